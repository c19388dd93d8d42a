//! Helpers the benchmark examples share (each uses part of them).
#![allow(dead_code)]

/// The value after `--name` on the command line, or `default`.
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The default mode's constants: the threshold, the neighbours each photo
/// gets checked and how far they may be.
pub const THRESHOLD: f32 = 0.21;
pub const NEIGHBOURS: usize = 5;
pub const RADIUS: f32 = 0.5;

/// Pairs of photos, `(a < b)`.
pub type Pairs = Vec<(u32, u32)>;

/// Brute force for one query: its pairs under the threshold and its
/// `NEIGHBOURS` nearest within the radius (by distance, then index).
pub fn truth(e: &neardup::index::Embeddings, q: usize) -> (Pairs, Pairs) {
    let mut all: Vec<(f32, u32)> = (0..e.len())
        .filter(|&j| j != q)
        .map(|j| {
            (
                neardup::index::cosine_distance(e.row(q), e.row(j)),
                j as u32,
            )
        })
        .filter(|&(d, _)| d <= RADIUS.max(THRESHOLD))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let key = |j: u32| ((q as u32).min(j), (q as u32).max(j));
    let under = all.iter().filter(|x| x.0 <= THRESHOLD).map(|x| key(x.1));
    let nearest = all.iter().filter(|x| x.0 <= RADIUS).take(NEIGHBOURS);
    (under.collect(), nearest.map(|x| key(x.1)).collect())
}

/// The sizes on the command line (the arguments that are not `--flag
/// value` pairs), or `default`.
pub fn sizes(args: &[String], default: &[usize]) -> Vec<usize> {
    let mut sizes: Vec<usize> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        if args[i].starts_with("--") {
            i += 2;
            continue;
        }
        sizes.push(args[i].parse().expect("N"));
        i += 1;
    }
    if sizes.is_empty() {
        sizes = default.to_vec();
    }
    sizes
}

/// Runs this program again as `--child N` with `flags` for each size, one
/// process each, so that each size has its own peak RSS.
pub fn run_children(sizes: &[usize], flags: &[String]) {
    let me = std::env::current_exe().expect("own path");
    for n in sizes {
        let status = std::process::Command::new(&me)
            .args(["--child", &n.to_string()])
            .args(flags)
            .status()
            .expect("run child");
        assert!(status.success(), "N {n} failed");
    }
}

/// This process's peak resident memory so far, MB (Linux: `VmHWM`).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse::<f64>().ok()))
        })
        .flatten()
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A fixed centre for the hyperplanes: the mean of the first 10,000
/// vectors, as the model's `lsh_centre` is the mean of its vectors over
/// reference photos.
pub fn sample_centre(e: &neardup::index::Embeddings) -> Vec<f32> {
    let rows = e.len().min(10_000);
    let sample = neardup::index::Embeddings {
        dim: e.dim,
        data: e.data[..e.dim * rows].to_vec(),
    };
    neardup::index::mean_vector(&sample)
}
