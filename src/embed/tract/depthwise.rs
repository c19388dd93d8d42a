//! Depthwise convolutions run by neardup's own operator inside tract's plan.
//!
//! EfficientNet-Lite0 is mostly depthwise and pointwise convolutions. tract
//! 0.23.9 runs the pointwise ones through its AVX-512/FMA matrix kernels, but
//! the depthwise ones through `DepthWise`, which splits every plane into
//! "zones" by which taps fall inside the padding and calls its vector kernel
//! once per zone row: half of the model's time, most of it overhead on the
//! small late planes (7×7 with a 5×5 kernel is 25 zones of 1 to 9 points).
//!
//! [`DepthwiseConv`] replaces every such `Conv` in the decluttered graph before
//! tract optimises it, with the ReLU6 after it fused. Per channel it copies the
//! plane once into a zero-padded buffer split by stride phase ([`Geometry`]),
//! so that for every tap the whole output plane is one contiguous run; it sums
//! the taps over blocks of 32 points held in registers, with AVX2 where the
//! machine has it, then copies the valid columns out.
//!
//! The arithmetic is tract's: per output point `sum = bias`, then `sum = sum +
//! w * x` tap by tap in the kernel's row-major order, a multiply and an add,
//! never a fused multiply-add. A tap over the padding adds `w * 0`, which
//! tract skips; that can only turn a `-0` into `+0`. The model's output comes
//! out bit-identical on real photos (`tests/depthwise.rs` on the sample album;
//! `examples/infer_profile --compare` on any folder).

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// A depthwise 2-D convolution (one filter per channel), f32, channels before
/// the spatial axes (`NCHW` or `CHW`), no dilation.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthwiseConv {
    /// Whether the tensors carry a leading batch axis.
    has_n: bool,
    /// Kernel height and width.
    kernel: (usize, usize),
    /// Vertical and horizontal stride.
    stride: (usize, usize),
    /// Zero padding: top, bottom, left, right.
    pad: (usize, usize, usize, usize),
    /// `[channels, kh * kw]`, row-major taps per channel.
    weights: Arc<Tensor>,
    /// `[channels]`.
    bias: Arc<Tensor>,
    /// `max(lo)` then `min(hi)` on the output: the ReLU6 after every
    /// depthwise convolution of the model, fused.
    clamp: Option<(f32, f32)>,
}

impl Eq for DepthwiseConv {}

impl DepthwiseConv {
    /// The operator for a convolution node of a decluttered graph, when it is
    /// a depthwise one this operator runs: `None` otherwise.
    fn for_conv(model: &TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<Self>> {
        let spec = &conv.pool_spec;
        let (c_in, c_out) = (conv.input_channels(), conv.output_channels());
        if conv.q_params.is_some()
            || conv.group != c_in
            || c_in != c_out
            || conv.kernel_fmt != KernelFormat::OIHW
            || !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            || spec.kernel_shape.len() != 2
            || spec.dilations().iter().any(|&d| d != 1)
            || node.inputs.len() != 3
        {
            return Ok(None);
        }
        let x = model.outlet_fact(node.inputs[0])?;
        let (Some(shape), Some(w), Some(b)) = (
            x.shape.as_concrete(),
            model.outlet_fact(node.inputs[1])?.konst.clone(),
            model.outlet_fact(node.inputs[2])?.konst.clone(),
        ) else {
            return Ok(None);
        };
        if x.datum_type != f32::datum_type()
            || w.datum_type() != f32::datum_type()
            || b.datum_type() != f32::datum_type()
        {
            return Ok(None);
        }
        let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
        if w.shape() != [c_out, 1, kh, kw]
            || (b.len() != c_out && b.len() != 1)
            || kh * kw > MAX_TAPS
        {
            return Ok(None);
        }
        let ds = spec.data_format.shape(shape)?;
        let padding = spec.computed_padding(ds.hw_dims());
        let strides = spec.strides();
        let weights = w.clone().into_tensor().into_shape(&[c_out, kh * kw])?;
        let bias = if b.len() == c_out {
            b.clone().into_tensor().into_shape(&[c_out])?
        } else {
            let v = b.cast_to_scalar::<f32>()?;
            Tensor::from_shape(&[c_out], &vec![v; c_out])?
        };
        Ok(Some(DepthwiseConv {
            has_n: spec.data_format.has_n(),
            kernel: (kh, kw),
            stride: (strides[0], strides[1]),
            pad: (
                padding[0].pad_before,
                padding[0].pad_after,
                padding[1].pad_before,
                padding[1].pad_after,
            ),
            weights: weights.into_arc_tensor(),
            bias: bias.into_arc_tensor(),
            clamp: None,
        }))
    }

    fn output_hw(&self, h: usize, w: usize) -> TractResult<(usize, usize)> {
        let (kh, kw) = self.kernel;
        let (pt, pb, pl, pr) = self.pad;
        let (hp, wp) = (h + pt + pb, w + pl + pr);
        ensure!(
            hp >= kh && wp >= kw,
            "depthwise input {h}x{w} smaller than its kernel"
        );
        Ok(((hp - kh) / self.stride.0 + 1, (wp - kw) / self.stride.1 + 1))
    }

    /// The output shape for an input shape, whose channels must be the
    /// operator's.
    fn output_shape(&self, shape: &[usize]) -> TractResult<TVec<usize>> {
        let (_, c, h, w) = self.dims(shape)?;
        ensure!(
            c == self.bias.len(),
            "depthwise input has {c} channels, expected {}",
            self.bias.len()
        );
        let (ho, wo) = self.output_hw(h, w)?;
        let mut out: TVec<usize> = shape.into();
        let rank = out.len();
        out[rank - 2] = ho;
        out[rank - 1] = wo;
        Ok(out)
    }

    /// `(n, c, h, w)` of an input shape.
    fn dims(&self, shape: &[usize]) -> TractResult<(usize, usize, usize, usize)> {
        match (self.has_n, shape) {
            (true, &[n, c, h, w]) => Ok((n, c, h, w)),
            (false, &[c, h, w]) => Ok((1, c, h, w)),
            _ => bail!("depthwise input of shape {shape:?}"),
        }
    }
}

/// Replace every depthwise convolution of a decluttered graph by
/// [`DepthwiseConv`], with the `Max`/`Min` pair after it when there is one.
/// Returns how many were replaced.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        let Some(mut op) = DepthwiseConv::for_conv(model, node, conv)? else {
            continue;
        };
        let mut last = id;
        if let Some((lo, max)) = bound_after(model, id, "Max")? {
            if let Some((hi, min)) = bound_after(model, max, "Min")? {
                op.clamp = Some((lo, hi));
                last = min;
            }
        }
        let mut patch = TypedModelPatch::new("neardup depthwise");
        let x = patch.tap_model(model, node.inputs[0])?;
        let out = patch.wire_node(&node.name, op, &[x])?;
        patch.shunt_outside(model, last.into(), out[0])?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// When node `id`'s only consumer is the binary operator `name` (`Max` or
/// `Min`) against one constant value: that value and the consumer's node.
fn bound_after(model: &TypedModel, id: usize, name: &str) -> TractResult<Option<(f32, usize)>> {
    let node = model.node(id);
    let [succ] = &*node.outputs[0].successors else {
        return Ok(None);
    };
    if node.outputs.len() != 1 {
        return Ok(None);
    }
    let next = model.node(succ.node);
    let Some(bin) = next.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if bin.0.name() != name || next.inputs.len() != 2 {
        return Ok(None);
    }
    let other = next.inputs[1 - succ.slot];
    let Some(k) = model.outlet_fact(other)?.konst.clone() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(OutletId::new(id, 0))?;
    if k.datum_type() != f32::datum_type()
        || model.outlet_fact(next.id.into())?.shape != fact.shape
        || k.len() == 0
    {
        return Ok(None);
    }
    let values = k.to_plain_array_view::<f32>()?;
    let first = values.iter().next().copied().unwrap_or(0.0);
    if values.iter().any(|v| v.to_bits() != first.to_bits()) {
        return Ok(None);
    }
    Ok(Some((first, next.id)))
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "NeardupDepthwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "kernel {:?} stride {:?} pad (t, b, l, r) {:?} clamp {:?}",
            self.kernel, self.stride, self.pad, self.clamp
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    fn as_typed(&self) -> Option<&dyn TypedOp> {
        Some(self)
    }
}

impl EvalOp for DepthwiseConv {
    fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
        Ok(Some(EvalOp::eval(
            self,
            &EvalContext::out_of_plan(),
            inputs,
        )?))
    }

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (n, c, h, w) = self.dims(input.shape())?;
        let shape = self.output_shape(input.shape())?;
        let (ho, wo) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        // SAFETY: every element is written below (each plane's `dst` row by
        // row, all `ho` rows of `wo` points).
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        {
            let xv = input.try_as_plain_ram()?;
            let x = xv.as_slice::<f32>()?;
            let mut ov = output.try_as_plain_ram_mut()?;
            let out = ov.as_slice_mut::<f32>()?;
            let wv = self.weights.try_as_plain_ram()?;
            let weights = wv.as_slice::<f32>()?;
            let bv = self.bias.try_as_plain_ram()?;
            let bias = bv.as_slice::<f32>()?;
            let geo = Geometry::new(self, h, w, ho, wo);
            let mut scratch = vec![0f32; geo.scratch_len()];
            let planes = x.chunks_exact(h * w).zip(out.chunks_exact_mut(ho * wo));
            for (plane, (src, dst)) in planes.enumerate() {
                let ch = plane % c;
                let taps = &weights[ch * geo.taps()..(ch + 1) * geo.taps()];
                let plane = Plane {
                    src,
                    dst,
                    taps,
                    bias: bias[ch],
                };
                run_plane(&geo, plane, &mut scratch);
            }
            debug_assert_eq!(out.len(), n * c * ho * wo);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for DepthwiseConv {
    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = inputs[0]
            .shape
            .as_concrete()
            .context("depthwise input shape must be known")?;
        Ok(tvec!(f32::fact(&*self.output_shape(shape)?)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let shape = inputs[0].shape.as_concrete().context("unknown shape")?;
        let (n, c, h, w) = self.dims(shape)?;
        let (ho, wo) = self.output_hw(h, w)?;
        let macs = n * c * ho * wo * self.kernel.0 * self.kernel.1;
        Ok(tvec!((Cost::FMA(f32::datum_type()), macs.to_dim())))
    }

    /// The batch axis of a batch of one may be dropped (tract does that to the
    /// whole graph); no other change of axes is accepted.
    fn change_axes(
        &self,
        model: &TypedModel,
        node: &TypedNode,
        io: InOut,
        change: &AxisOp,
    ) -> TractResult<Option<AxisChangeConsequence>> {
        if self.has_n
            && matches!(change, AxisOp::Rm(0))
            && matches!(io, InOut::In(0) | InOut::Out(0))
        {
            let op = DepthwiseConv {
                has_n: false,
                ..self.clone()
            };
            return Ok(Some(AxisChangeConsequence::new(
                model,
                node,
                Some(Box::new(op)),
                change,
            )));
        }
        Ok(None)
    }
}

/// Output points summed together in registers.
const BLOCK: usize = 32;

/// The largest kernel the operator takes (taps per channel).
const MAX_TAPS: usize = 64;

/// The shapes one plane is computed with.
///
/// The padded plane is split into `sy * sx` phases by row and column parity
/// (one phase when the stride is 1): padded pixel `(py, px)` is at `(py / sy,
/// px / sx)` of phase `(py % sy, px % sx)`, each phase `wq` wide. Output point
/// `(oy, ox)` reads, for tap `(ky, kx)`, the point `(oy + ky / sy, ox + kx /
/// sx)` of phase `(ky % sy, kx % sx)`: for every tap, the whole output plane,
/// laid out `wq` wide, is one contiguous run of one phase. The output is
/// computed that wide, the columns past `wo` thrown away.
struct Geometry {
    kh: usize,
    kw: usize,
    sy: usize,
    sx: usize,
    pt: usize,
    pl: usize,
    w: usize,
    ho: usize,
    wo: usize,
    /// Width of a phase.
    wq: usize,
    /// Length of a phase: one row more than its height, so that the runs of
    /// the last taps stay inside.
    phase_len: usize,
    /// Applied to every output point.
    clamp: Option<(f32, f32)>,
}

impl Geometry {
    fn new(op: &DepthwiseConv, h: usize, w: usize, ho: usize, wo: usize) -> Geometry {
        let (kh, kw) = op.kernel;
        let (sy, sx) = op.stride;
        let (pt, pb, pl, pr) = op.pad;
        let wq = (w + pl + pr).div_ceil(sx);
        let hq = (h + pt + pb).div_ceil(sy);
        Geometry {
            kh,
            kw,
            sy,
            sx,
            pt,
            pl,
            w,
            ho,
            wo,
            wq,
            phase_len: (hq + 1) * wq,
            clamp: op.clamp,
        }
    }

    fn taps(&self) -> usize {
        self.kh * self.kw
    }

    /// The phases, then the output laid out `wq` wide.
    fn scratch_len(&self) -> usize {
        self.sy * self.sx * self.phase_len + self.ho * self.wq
    }
}

/// One channel's input plane (`h * w`), its output plane (`ho * wo`), its
/// taps and its bias.
struct Plane<'a> {
    src: &'a [f32],
    dst: &'a mut [f32],
    taps: &'a [f32],
    bias: f32,
}

/// One channel. `scratch` is [`Geometry::scratch_len`] long, zeroed before
/// the first plane and handed unchanged from one plane to the next.
fn run_plane(g: &Geometry, plane: Plane, scratch: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the machine has AVX2.
        return unsafe { run_plane_avx2(g, plane, scratch) };
    }
    run_plane_any(g, plane, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_plane_avx2(g: &Geometry, plane: Plane, scratch: &mut [f32]) {
    run_plane_any(g, plane, scratch)
}

/// The plane's work, inlined into each instruction-set variant above.
#[inline(always)]
fn run_plane_any(g: &Geometry, plane: Plane, scratch: &mut [f32]) {
    let Plane {
        src,
        dst,
        taps,
        bias,
    } = plane;
    // The scratch starts zeroed and every plane writes the same cells (the
    // photo's pixels): the padding stays zero from one plane to the next.
    let (phases, wide) = scratch.split_at_mut(g.sy * g.sx * g.phase_len);
    for (y, row) in src.chunks_exact(g.w).enumerate() {
        let py = y + g.pt;
        let at = (py % g.sy) * g.sx * g.phase_len + (py / g.sy) * g.wq;
        if g.sx == 1 {
            phases[at + g.pl..at + g.pl + g.w].copy_from_slice(row);
            continue;
        }
        if g.sx == 2 {
            // Even and odd padded columns, a pair at a time.
            let (p0, p1) = phases[at..].split_at_mut(g.phase_len);
            let mut row = row;
            let mut px = g.pl;
            if px % 2 == 1 {
                p1[px / 2] = row[0];
                row = &row[1..];
                px += 1;
            }
            let base = px / 2;
            let pairs = row.chunks_exact(2);
            if let &[last] = pairs.remainder() {
                p0[base + row.len() / 2] = last;
            }
            let (p0, p1) = (
                &mut p0[base..base + row.len() / 2],
                &mut p1[base..base + row.len() / 2],
            );
            for ((pair, e), o) in pairs.zip(p0).zip(p1) {
                *e = pair[0];
                *o = pair[1];
            }
            continue;
        }
        let (mut qx, mut col) = (g.pl % g.sx, g.pl / g.sx);
        for &v in row {
            phases[at + qx * g.phase_len + col] = v;
            qx += 1;
            if qx == g.sx {
                qx = 0;
                col += 1;
            }
        }
    }
    let len = g.ho * g.wq;
    let wide = &mut wide[..len];
    // Where each tap's run starts in the phases.
    let mut starts = [0usize; MAX_TAPS];
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let phase = ((ky % g.sy) * g.sx + kx % g.sx) * g.phase_len;
            starts[ky * g.kw + kx] = phase + (ky / g.sy) * g.wq + kx / g.sx;
        }
    }
    let starts = &starts[..taps.len()];
    // Blocks of BLOCK points, their sums held in registers over all taps.
    let mut b = 0;
    while b + BLOCK <= len {
        let mut acc = [bias; BLOCK];
        for (&t, &s) in taps.iter().zip(starts) {
            let run: &[f32; BLOCK] = phases[s + b..s + b + BLOCK].try_into().expect("a block");
            for (a, &v) in acc.iter_mut().zip(run) {
                *a += t * v;
            }
        }
        wide[b..b + BLOCK].copy_from_slice(&acc);
        b += BLOCK;
    }
    let tail = &mut wide[b..];
    tail.fill(bias);
    for (&t, &s) in taps.iter().zip(starts) {
        for (o, &v) in tail.iter_mut().zip(&phases[s + b..]) {
            *o += t * v;
        }
    }
    let rows = dst.chunks_exact_mut(g.wo).zip(wide.chunks_exact(g.wq));
    match g.clamp {
        None => rows.for_each(|(out, row)| out.copy_from_slice(&row[..g.wo])),
        Some((lo, hi)) => rows.for_each(|(out, row)| {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = v.max(lo).min(hi);
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random float in [-1, 1).
    fn noise(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// The definition, point by point, skipping the taps over the padding.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        h: usize,
        w: usize,
        taps: &[f32],
        bias: f32,
        (kh, kw): (usize, usize),
        (sy, sx): (usize, usize),
        (pt, pl): (usize, usize),
        (ho, wo): (usize, usize),
    ) -> Vec<f32> {
        let mut out = vec![0f32; ho * wo];
        for oy in 0..ho {
            for ox in 0..wo {
                let mut sum = bias;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (iy, ix) = (
                            (oy * sy + ky) as isize - pt as isize,
                            (ox * sx + kx) as isize - pl as isize,
                        );
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            sum += taps[ky * kw + kx] * x[iy as usize * w + ix as usize];
                        }
                    }
                }
                out[oy * wo + ox] = sum;
            }
        }
        out
    }

    fn floats(t: &Tensor) -> Vec<f32> {
        t.to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn every_shape_of_the_model_matches_the_definition() {
        let mut seed = 11u64;
        // The model's own (plane, kernel, stride, padding) and odd ones.
        let cases = [
            (112, 112, 3, 1, (1, 1, 1, 1)),
            (112, 112, 3, 2, (0, 1, 0, 1)),
            (56, 56, 5, 2, (1, 2, 1, 2)),
            (28, 28, 5, 1, (2, 2, 2, 2)),
            (14, 14, 5, 2, (1, 2, 1, 2)),
            (7, 7, 5, 1, (2, 2, 2, 2)),
            (7, 7, 3, 1, (1, 1, 1, 1)),
            (9, 13, 3, 3, (1, 0, 2, 1)),
            (5, 6, 1, 1, (0, 0, 0, 0)),
        ];
        for ((h, w, k, s, pad), clamp) in cases
            .into_iter()
            .flat_map(|c| [(c, None), (c, Some((-0.25f32, 0.5f32)))])
        {
            let op = DepthwiseConv {
                has_n: false,
                kernel: (k, k),
                stride: (s, s),
                pad,
                weights: Tensor::from_shape(
                    &[2, k * k],
                    &(0..2 * k * k).map(|_| noise(&mut seed)).collect::<Vec<_>>(),
                )
                .unwrap()
                .into_arc_tensor(),
                bias: Tensor::from_shape(&[2], &[noise(&mut seed), noise(&mut seed)])
                    .unwrap()
                    .into_arc_tensor(),
                clamp,
            };
            let x: Vec<f32> = (0..2 * h * w).map(|_| noise(&mut seed)).collect();
            let input = Tensor::from_shape(&[2, h, w], &x).unwrap();
            let out = op
                .eval(&EvalContext::out_of_plan(), tvec!(input.into_tvalue()))
                .unwrap();
            let (ho, wo) = op.output_hw(h, w).unwrap();
            assert_eq!(out[0].shape(), &[2, ho, wo]);
            let got = floats(&out[0]);
            for ch in 0..2 {
                let want = reference(
                    &x[ch * h * w..(ch + 1) * h * w],
                    h,
                    w,
                    &floats(&op.weights)[ch * k * k..(ch + 1) * k * k],
                    floats(&op.bias)[ch],
                    (k, k),
                    (s, s),
                    (pad.0, pad.2),
                    (ho, wo),
                );
                let want: Vec<f32> = match clamp {
                    None => want,
                    Some((lo, hi)) => want.iter().map(|v| v.max(lo).min(hi)).collect(),
                };
                let got = &got[ch * ho * wo..(ch + 1) * ho * wo];
                // Same arithmetic in the same order: equal, up to the sign of
                // a zero (a tap over the padding adds w * 0).
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g == w,
                        "{h}x{w} k{k} s{s} {pad:?} {clamp:?}, channel {ch}, point {i}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_batch_axis_is_carried_and_bad_shapes_are_refused() {
        let op = DepthwiseConv {
            has_n: true,
            kernel: (3, 3),
            stride: (1, 1),
            pad: (1, 1, 1, 1),
            weights: Tensor::from_shape(&[1, 9], &[0f32, 0., 0., 0., 1., 0., 0., 0., 0.])
                .unwrap()
                .into_arc_tensor(),
            clamp: None,
            bias: Tensor::from_shape(&[1], &[0.5f32])
                .unwrap()
                .into_arc_tensor(),
        };
        let x = Tensor::from_shape(
            &[2, 1, 2, 3],
            &[1f32, 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.],
        )
        .unwrap();
        let out = op
            .eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()))
            .unwrap();
        assert_eq!(out[0].shape(), &[2, 1, 2, 3]);
        assert_eq!(floats(&out[0])[11], 12.5);
        let wrong = Tensor::from_shape(&[1, 2, 2, 3], &[0f32; 12]).unwrap();
        assert!(op
            .eval(&EvalContext::out_of_plan(), tvec!(wrong.into_tvalue()))
            .is_err());
    }
}
