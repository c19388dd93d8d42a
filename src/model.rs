//! What the program knows about a model: its bytes, its sidecar (input size,
//! normalisation, output name) and its identity (sha256).
//!
//! The sidecar is a small JSON file next to the model (`model.onnx` ->
//! `model.json`). The bundled model ships one in `models/`; a user who brings
//! another CNN in ONNX form writes one for it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The bundled model's bytes, embedded in the binary so that it works from any
/// directory after `cargo install`.
pub const BUNDLED_ONNX: &[u8] = include_bytes!("../models/efficientnet_lite0_fmap.onnx");
/// The bundled model's sidecar.
pub const BUNDLED_SIDECAR: &str = include_str!("../models/efficientnet_lite0_fmap.json");

/// The sidecar format this build reads.
pub const SIDECAR_FORMAT: u32 = 1;

/// The largest model file read (`--model`): the bundled one is a few MB;
/// anything larger is refused before it is read (or, for a file that grows
/// meanwhile, as soon as it passes the bound).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;
/// The largest sidecar (JSON) read.
pub const MAX_SIDECAR_BYTES: u64 = 1 << 20;

/// How to turn a photo into the model's input tensor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Name of the graph input.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Only "NCHW" is supported.
    pub layout: String,
    /// "RGB" or "BGR".
    pub color: String,
    /// A pixel byte `v` becomes `(v * scale - mean[c]) / std[c]`.
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// How the photo is resized before cropping.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResizeSpec {
    /// The shorter side is resized to this many pixels (keeping the aspect
    /// ratio), then the centre is cropped to the input size.
    pub shorter_side: u32,
    /// Only "center" is supported.
    pub crop: String,
}

/// Which output to read and how to pool it into a vector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: String,
    /// "none": the output is already `[N, D]`; "gap": a `[N, C, H, W]` map
    /// averaged over H and W.
    pub pooling: String,
}

/// The sidecar file next to a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub format_version: u32,
    pub name: String,
    /// sha256 of the ONNX file, lowercase hex; checked at load time.
    pub sha256: String,
    pub input: InputSpec,
    pub resize: ResizeSpec,
    pub output: OutputSpec,
    /// The cosine distance under which two photos are near-duplicates when
    /// the user gives no `--threshold`.
    #[serde(default)]
    pub default_threshold: Option<f32>,
    #[serde(default)]
    pub licence: Option<String>,
    /// The point the LSH hyperplanes pass through: the mean of the model's
    /// vectors over a reference set of photos. Optional; without it the
    /// planes pass through the origin or the scan's own mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsh_centre: Option<LshCentre>,
}

/// See [`Sidecar::lsh_centre`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LshCentre {
    /// Where the numbers come from.
    #[serde(default)]
    pub about: String,
    /// How many photos were averaged.
    #[serde(default)]
    pub photos: u64,
    pub vector: Vec<f32>,
}

impl Sidecar {
    /// Where the model wants its pixels (resize, then centre crop).
    pub fn geometry(&self) -> crate::decode::Geometry {
        crate::decode::Geometry {
            shorter_side: self.resize.shorter_side,
            width: self.input.width,
            height: self.input.height,
        }
    }

    pub fn parse(text: &str) -> Result<Sidecar> {
        let s: Sidecar = serde_json::from_str(text)
            .map_err(|e| Error::Model(format!("invalid sidecar: {e}")))?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Model(m));
        if self.format_version != SIDECAR_FORMAT {
            return bad(format!(
                "sidecar format_version {} is not supported (this build reads {SIDECAR_FORMAT})",
                self.format_version
            ));
        }
        let i = &self.input;
        if i.layout != "NCHW" {
            return bad(format!(
                "input layout {:?} is not supported (only NCHW)",
                i.layout
            ));
        }
        if i.color != "RGB" && i.color != "BGR" {
            return bad(format!(
                "input color {:?} is not supported (RGB or BGR)",
                i.color
            ));
        }
        if i.width == 0 || i.height == 0 || i.width > 4096 || i.height > 4096 {
            return bad(format!(
                "input size {}x{} is out of range",
                i.width, i.height
            ));
        }
        if !(i.scale.is_finite() && i.scale > 0.0)
            || i.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return bad("input scale and std must be positive".into());
        }
        if self.resize.crop != "center" {
            return bad(format!(
                "resize crop {:?} is not supported (only center)",
                self.resize.crop
            ));
        }
        if self.resize.shorter_side < i.width.min(i.height) {
            return bad(format!(
                "resize shorter_side {} is smaller than the input {}x{}",
                self.resize.shorter_side, i.width, i.height
            ));
        }
        if self.output.pooling != "none" && self.output.pooling != "gap" {
            return bad(format!(
                "output pooling {:?} is not supported (none or gap)",
                self.output.pooling
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("sidecar sha256 must be 64 hex digits".into());
        }
        if let Some(t) = self.default_threshold {
            if !(t > 0.0 && t < 2.0) {
                return bad(format!("default_threshold {t} is out of (0, 2)"));
            }
        }
        Ok(())
    }
}

/// A model ready to be loaded: its bytes, sidecar and identity.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub bytes: std::borrow::Cow<'static, [u8]>,
    pub sidecar: Sidecar,
    /// sha256 of `bytes`, lowercase hex (checked equal to the sidecar's).
    pub sha256: String,
    /// Where it came from: `None` for the bundled model.
    pub path: Option<PathBuf>,
    /// True once `sha256` was computed from `bytes` (the bundled model is
    /// checked when it is loaded, so that a fully cached rescan need not
    /// hash 13 MB).
    verified: bool,
}

impl ModelSource {
    /// The model bundled in the binary.
    pub fn bundled() -> Result<ModelSource> {
        let sidecar = Sidecar::parse(BUNDLED_SIDECAR)?;
        Ok(ModelSource {
            bytes: std::borrow::Cow::Borrowed(BUNDLED_ONNX),
            sha256: sidecar.sha256.to_ascii_lowercase(),
            sidecar,
            path: None,
            verified: false,
        })
    }

    /// Check that the bytes are the model the sidecar names (a no-op when
    /// that was already checked).
    pub fn verify(&self) -> Result<()> {
        if self.verified {
            return Ok(());
        }
        Self::checked(self.bytes.clone(), self.sidecar.clone(), self.path.clone()).map(|_| ())
    }

    /// A model file on disk with its sidecar next to it (same name, `.json`).
    pub fn from_path(path: &Path) -> Result<ModelSource> {
        let bytes = crate::open::read_capped(path, MAX_MODEL_BYTES)
            .map_err(|e| Error::Model(format!("cannot read {}: {e}", path.display())))?;
        let side = sidecar_path(path);
        let text = crate::open::read_text_capped(&side, MAX_SIDECAR_BYTES).map_err(|e| {
            Error::Model(format!(
                "cannot read the sidecar {} that describes {}: {e}",
                side.display(),
                path.display()
            ))
        })?;
        let sidecar =
            Sidecar::parse(&text).map_err(|e| Error::Model(format!("{}: {e}", side.display())))?;
        Self::checked(
            std::borrow::Cow::Owned(bytes),
            sidecar,
            Some(path.to_path_buf()),
        )
    }

    fn checked(
        bytes: std::borrow::Cow<'static, [u8]>,
        sidecar: Sidecar,
        path: Option<PathBuf>,
    ) -> Result<ModelSource> {
        let sha256 = sha256_hex(&bytes);
        if !sha256.eq_ignore_ascii_case(&sidecar.sha256) {
            return Err(Error::Model(format!(
                "sha256 of {} is {sha256}, but its sidecar says {}: the file is not the model the sidecar describes",
                path.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "the bundled model".into()),
                sidecar.sha256
            )));
        }
        Ok(ModelSource {
            bytes,
            sidecar,
            sha256,
            path,
            verified: true,
        })
    }
}

/// `model.onnx` -> `model.json`.
pub fn sidecar_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// sha256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_model_matches_its_sidecar() {
        let m = ModelSource::bundled().unwrap();
        m.verify().unwrap();
        assert_eq!(
            m.sha256,
            "0a7bb2ba6fe9ef80e0f186f540dfaf7429c43a194ced7239a7ce1f4ad67bb3a9"
        );
        assert_eq!(m.sidecar.input.width, 224);
        assert!(m.path.is_none());
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tampered_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"not the model").unwrap();
        std::fs::write(sidecar_path(&model), BUNDLED_SIDECAR).unwrap();
        let err = ModelSource::from_path(&model).unwrap_err().to_string();
        assert!(err.contains("sha256"), "{err}");
    }

    #[test]
    fn missing_sidecar_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"x").unwrap();
        let err = ModelSource::from_path(&model).unwrap_err().to_string();
        assert!(err.contains("sidecar") && err.contains("m.json"), "{err}");
    }

    #[test]
    fn sidecar_validation_rejects_unsupported_values() {
        let mut s = Sidecar::parse(BUNDLED_SIDECAR).unwrap();
        s.input.layout = "NHWC".into();
        assert!(s.validate().is_err());
        let mut s = Sidecar::parse(BUNDLED_SIDECAR).unwrap();
        s.output.pooling = "max".into();
        assert!(s.validate().is_err());
        let mut s = Sidecar::parse(BUNDLED_SIDECAR).unwrap();
        s.resize.shorter_side = 100;
        assert!(s.validate().is_err());
        assert!(Sidecar::parse("{\"format_version\": 1}").is_err());
    }
}
