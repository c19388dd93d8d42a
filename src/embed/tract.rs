//! The model run by tract: an L2-normalised vector per photo. This is the
//! only module that knows tract.

mod depthwise;

use super::l2_normalise;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::model::{ModelSource, Sidecar};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

/// What runs the model's depthwise convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depthwise {
    /// neardup's operator (`depthwise.rs`): the default, the model ~1.6× faster.
    Neardup,
    /// tract's own: to benchmark and test the default against.
    Tract,
}

/// A loaded, optimised model. Shared by reference between threads: each
/// call runs one image on the calling thread.
pub struct Embedder {
    plan: Plan,
    sidecar: Sidecar,
    dim: usize,
    replaced: usize,
}

impl Embedder {
    /// Load and optimise the model once.
    pub fn load(source: &ModelSource) -> Result<Embedder> {
        Self::load_with(source, Depthwise::Neardup)
    }

    /// [`Embedder::load`], choosing what runs the depthwise convolutions.
    pub fn load_with(source: &ModelSource, depthwise: Depthwise) -> Result<Embedder> {
        source.verify()?;
        let sc = &source.sidecar;
        let merr = |e: TractError| Error::Model(format!("{}: {e:#}", sc.name));
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &source.bytes[..])
            .map_err(merr)?;
        let (w, h) = (sc.input.width as usize, sc.input.height as usize);
        // Select the declared input and output by name.
        let input = model
            .input_outlets()
            .map_err(merr)?
            .iter()
            .position(|o| model.node(o.node).name == sc.input.name)
            .ok_or_else(|| {
                Error::Model(format!("the model has no input named {:?}", sc.input.name))
            })?;
        let input_outlet = model.input_outlets().map_err(merr)?[input];
        model.set_input_outlets(&[input_outlet]).map_err(merr)?;
        let output = model
            .find_outlet_label(&sc.output.name)
            .or_else(|| {
                model
                    .node_by_name(&sc.output.name)
                    .ok()
                    .map(|n| OutletId::new(n.id, 0))
            })
            .ok_or_else(|| {
                Error::Model(format!(
                    "the model has no output named {:?}",
                    sc.output.name
                ))
            })?;
        model.select_output_outlets(&[output]).map_err(merr)?;
        model
            .set_input_fact(0, f32::fact([1, 3, h, w]).into())
            .map_err(merr)?;
        let mut typed = model
            .into_typed()
            .map_err(merr)?
            .into_decluttered()
            .map_err(merr)?;
        let replaced = match depthwise {
            Depthwise::Neardup => depthwise::replace(&mut typed).map_err(merr)?,
            Depthwise::Tract => 0,
        };
        let plan = typed
            .into_optimized()
            .map_err(merr)?
            .into_runnable()
            .map_err(merr)?;
        let mut e = Embedder {
            plan,
            sidecar: sc.clone(),
            dim: 0,
            replaced,
        };
        // One run on a blank image: learns the vector size and fails early
        // on a model whose output does not fit the sidecar.
        let (probe, _) = e.raw(&vec![128u8; w * h * 3])?;
        if probe.is_empty() {
            return Err(Error::Model("the model's output is empty".into()));
        }
        e.dim = probe.len();
        Ok(e)
    }

    /// How many depthwise convolutions neardup's operator runs.
    pub fn own_depthwise_ops(&self) -> usize {
        self.replaced
    }

    /// Time every node of the plan over `runs` runs of a fixed image on this
    /// thread, summed by operator (`per_node`: by node, with its shape and
    /// settings), most expensive first, and the model's whole time per run.
    pub fn profile(&self, runs: usize, per_node: bool) -> Result<(Vec<OpTime>, Duration)> {
        let ierr = |e: TractError| Error::Inference(format!("{e:#}"));
        let i = &self.sidecar.input;
        let (h, w) = (i.height as usize, i.width as usize);
        let data: Vec<f32> = (0..3 * h * w).map(|k| (k % 251) as f32 / 251.0).collect();
        let input = Tensor::from_shape(&[1, 3, h, w], &data).map_err(ierr)?;
        let mut state = self.plan.spawn().map_err(ierr)?;
        state.run(tvec!(input.clone().into())).map_err(ierr)?;
        let mut by: std::collections::BTreeMap<String, (Duration, usize)> = Default::default();
        let t = Instant::now();
        for _ in 0..runs {
            state
                .run_plan_with_eval(tvec!(input.clone().into()), |ctx, st, node, inputs| {
                    let t = Instant::now();
                    let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
                    let key = if per_node {
                        format!(
                            "{} {:?} {}",
                            node.op().name(),
                            node.outputs[0].fact.shape,
                            node.op().info().unwrap_or_default().join(" ")
                        )
                    } else {
                        node.op().name().to_string()
                    };
                    let e = by.entry(key).or_default();
                    e.0 += t.elapsed();
                    e.1 += 1;
                    r
                })
                .map_err(ierr)?;
        }
        let total = t.elapsed() / runs.max(1) as u32;
        let mut rows: Vec<OpTime> = by
            .into_iter()
            .map(|(op, (d, n))| OpTime {
                op,
                per_run: d / runs.max(1) as u32,
                nodes: n / runs.max(1),
            })
            .collect();
        rows.sort_by(|a, b| b.per_run.cmp(&a.per_run).then(a.op.cmp(&b.op)));
        Ok((rows, total))
    }

    /// Length of the vectors this model produces.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embed one photo given as `width * height` RGB pixels in display
    /// orientation (what [`crate::decode::prepare`] returns). The result is
    /// L2-normalised.
    pub fn embed(&self, rgb: &[u8]) -> Result<Vec<f32>> {
        Ok(self.embed_with_layout(rgb)?.0)
    }

    /// [`Embedder::embed`], and the [`Layout`] of the feature map when the
    /// model's output is one (pooled by `"gap"`).
    pub fn embed_with_layout(&self, rgb: &[u8]) -> Result<(Vec<f32>, Option<Layout>)> {
        let (mut v, layout) = self.raw(rgb)?;
        l2_normalise(&mut v);
        Ok((v, layout))
    }

    fn raw(&self, rgb: &[u8]) -> Result<(Vec<f32>, Option<Layout>)> {
        let i = &self.sidecar.input;
        let (w, h) = (i.width as usize, i.height as usize);
        if rgb.len() != w * h * 3 {
            return Err(Error::Inference(format!(
                "expected {} bytes of pixels, got {}",
                w * h * 3,
                rgb.len()
            )));
        }
        let bgr = i.color == "BGR";
        let mut data = vec![0f32; 3 * w * h];
        for c in 0..3 {
            let src_c = if bgr { 2 - c } else { c };
            let (mul, add) = (i.scale / i.std[c], -i.mean[c] / i.std[c]);
            let plane = &mut data[c * w * h..(c + 1) * w * h];
            for (k, out) in plane.iter_mut().enumerate() {
                *out = rgb[k * 3 + src_c] as f32 * mul + add;
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, h, w], &data)
            .map_err(|e| Error::Inference(e.to_string()))?;
        self.run_full(tensor)
    }

    /// Run the graph on an input tensor `[1, 3, H, W]` that is already
    /// normalised, and pool the output into a vector (not normalised).
    pub fn run_tensor(&self, data: &[f32]) -> Result<Vec<f32>> {
        let i = &self.sidecar.input;
        let tensor = Tensor::from_shape(&[1, 3, i.height as usize, i.width as usize], data)
            .map_err(|e| Error::Inference(e.to_string()))?;
        self.run(tensor)
    }

    fn run(&self, tensor: Tensor) -> Result<Vec<f32>> {
        Ok(self.run_full(tensor)?.0)
    }

    fn run_full(&self, tensor: Tensor) -> Result<(Vec<f32>, Option<Layout>)> {
        let ierr = |e: TractError| Error::Inference(format!("{e:#}"));
        let out = self.plan.run(tvec!(tensor.into())).map_err(ierr)?;
        let view = out[0].to_plain_array_view::<f32>().map_err(ierr)?;
        let shape = view.shape().to_vec();
        let flat: Vec<f32> = view.iter().copied().collect();
        match (self.sidecar.output.pooling.as_str(), shape.len()) {
            ("none", _) => Ok((flat, None)),
            ("gap", 4) => {
                let (c, hw) = (shape[1], shape[2] * shape[3]);
                let pooled = (0..c)
                    .map(|k| flat[k * hw..(k + 1) * hw].iter().sum::<f32>() / hw as f32)
                    .collect();
                let r = &self.sidecar.resize;
                let i = &self.sidecar.input;
                let crop = i.width.min(i.height) as f32 / r.shorter_side.max(1) as f32;
                // The cells' places are known for a square centre crop only.
                let layout = (i.width == i.height)
                    .then(|| Layout::from_feature_map(&flat, c, shape[2], shape[3], crop.min(1.0)))
                    .flatten();
                Ok((pooled, layout))
            }
            (p, r) => Err(Error::Model(format!(
                "pooling {p:?} does not fit an output of rank {r}"
            ))),
        }
    }
}

/// One line of [`Embedder::profile`].
#[derive(Clone, Debug)]
pub struct OpTime {
    /// The operator (or node) name.
    pub op: String,
    /// Its time per run of the model.
    pub per_run: Duration,
    /// How many nodes of the plan it covers.
    pub nodes: usize,
}

/// An [`Embedder`] loaded on first use and shared by every stage that may
/// need it: a scan served entirely by the cache never loads the model, and
/// one that needs it loads it once.
pub struct LazyEmbedder<'a> {
    model: &'a ModelSource,
    cell: OnceLock<std::result::Result<Embedder, String>>,
    load_ns: AtomicU64,
}

impl<'a> LazyEmbedder<'a> {
    pub fn new(model: &'a ModelSource) -> Self {
        LazyEmbedder {
            model,
            cell: OnceLock::new(),
            load_ns: AtomicU64::new(0),
        }
    }

    pub fn model(&self) -> &'a ModelSource {
        self.model
    }

    /// The embedder, loading it now if this is the first call.
    pub fn get(&self) -> std::result::Result<&Embedder, String> {
        self.cell
            .get_or_init(|| {
                let t = Instant::now();
                let e = Embedder::load(self.model).map_err(|e| e.to_string());
                self.load_ns
                    .store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                e
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Time spent loading the model (zero when it was never loaded).
    pub fn load_time(&self) -> Duration {
        Duration::from_nanos(self.load_ns.load(Ordering::Relaxed))
    }
}
