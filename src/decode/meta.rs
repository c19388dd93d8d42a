//! Per-photo metadata read from the file's bytes (EXIF): the capture date,
//! the camera, whether there is a GPS position, and how many EXIF fields
//! there are. Used to choose the copy to keep ([`crate::keep`]).
//!
//! EXIF is read from JPEG, TIFF (and TIFF-based RAW), PNG, WebP and HEIF
//! containers by `kamadak-exif`. A photo without EXIF, or with EXIF that
//! cannot be parsed, simply has no metadata: it is never an error.

use serde::{Deserialize, Serialize};

/// Cache kind of the metadata (bump when what is extracted changes).
pub const FACT_KIND: &str = "meta/1";

/// What the EXIF of a photo says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// DateTimeOriginal, else DateTime, as `YYYY-MM-DDTHH:MM:SS` (the
    /// camera's local time, as EXIF stores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<String>,
    /// Make and model, e.g. `NIKON CORPORATION NIKON D750`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// A GPS latitude and longitude are present.
    #[serde(default)]
    pub gps: bool,
    /// The number of EXIF fields (all IFDs).
    #[serde(default)]
    pub exif_fields: u32,
}

impl Meta {
    /// How many of capture date, camera and GPS position are known (0-3).
    pub fn richness(&self) -> u32 {
        self.captured.is_some() as u32 + self.camera.is_some() as u32 + self.gps as u32
    }

    /// The metadata as bytes for the cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("Meta serialises")
    }

    /// Metadata back from [`Meta::to_bytes`]; `None` when not readable.
    pub fn from_bytes(bytes: &[u8]) -> Option<Meta> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Read the metadata of a photo from its bytes.
pub fn read(bytes: &[u8]) -> Meta {
    let mut cursor = std::io::Cursor::new(bytes);
    let exif = match exif::Reader::new().read_from_container(&mut cursor) {
        Ok(e) => e,
        Err(_) => return Meta::default(),
    };
    let ascii = |tag: exif::Tag| -> Option<String> {
        let f = exif.get_field(tag, exif::In::PRIMARY)?;
        match &f.value {
            exif::Value::Ascii(parts) => {
                let s = parts
                    .iter()
                    .map(|p| {
                        String::from_utf8_lossy(p)
                            .trim_matches(['\0', ' '])
                            .to_string()
                    })
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                (!s.is_empty()).then_some(s)
            }
            _ => None,
        }
    };
    let date = |tag: exif::Tag| -> Option<String> {
        let f = exif.get_field(tag, exif::In::PRIMARY)?;
        let exif::Value::Ascii(parts) = &f.value else {
            return None;
        };
        let d = exif::DateTime::from_ascii(parts.first()?).ok()?;
        // "0000:00:00 00:00:00" is what cameras write when the clock is unset.
        if d.year == 0 || d.month == 0 || d.day == 0 || d.month > 12 || d.day > 31 {
            return None;
        }
        if d.hour > 23 || d.minute > 59 || d.second > 60 {
            return None;
        }
        Some(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.year, d.month, d.day, d.hour, d.minute, d.second
        ))
    };
    let captured = date(exif::Tag::DateTimeOriginal).or_else(|| date(exif::Tag::DateTime));
    let camera = match (ascii(exif::Tag::Make), ascii(exif::Tag::Model)) {
        (Some(make), Some(model)) if model.starts_with(&make) => Some(model),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (a, b) => a.or(b),
    };
    let gps = exif
        .get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
        .is_some()
        && exif
            .get_field(exif::Tag::GPSLongitude, exif::In::PRIMARY)
            .is_some();
    let exif_fields = exif.fields().len() as u32;
    Meta {
        captured,
        camera,
        gps,
        exif_fields,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use exif::{Field, In, Tag, Value};

    /// A TIFF-structured EXIF block with these fields.
    pub(crate) fn exif_block(fields: &[Field]) -> Vec<u8> {
        let mut w = exif::experimental::Writer::new();
        for f in fields {
            w.push_field(f);
        }
        let mut buf = std::io::Cursor::new(Vec::new());
        w.write(&mut buf, false).unwrap();
        buf.into_inner()
    }

    /// A JPEG with an APP1 EXIF segment inserted after SOI.
    pub(crate) fn with_exif(jpeg: &[u8], fields: &[Field]) -> Vec<u8> {
        let tiff = exif_block(fields);
        let len = (tiff.len() + 8) as u16;
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(b"Exif\0\0");
        out.extend_from_slice(&tiff);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    pub(crate) fn ascii(tag: Tag, s: &str) -> Field {
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![s.as_bytes().to_vec()]),
        }
    }

    pub(crate) fn small_jpeg() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([x as u8 * 9, y as u8 * 9, 7]));
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90)
            .encode_image(&img)
            .unwrap();
        buf
    }

    #[test]
    fn reads_date_camera_gps_from_jpeg() {
        let r = |n: u32| exif::Rational { num: n, denom: 1 };
        let fields = [
            ascii(Tag::Make, "NIKON CORPORATION"),
            ascii(Tag::Model, "NIKON D750"),
            ascii(Tag::DateTime, "2021:05:06 07:08:09"),
            ascii(Tag::DateTimeOriginal, "2020:01:02 03:04:05"),
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![r(48), r(51), r(24)]),
            },
            Field {
                tag: Tag::GPSLongitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![r(2), r(21), r(3)]),
            },
        ];
        let bytes = with_exif(&small_jpeg(), &fields);
        let m = read(&bytes);
        assert_eq!(m.captured.as_deref(), Some("2020-01-02T03:04:05"));
        assert_eq!(m.camera.as_deref(), Some("NIKON CORPORATION NIKON D750"));
        assert!(m.gps);
        assert_eq!(m.exif_fields, 6);
        assert_eq!(m.richness(), 3);
        // The photo still decodes with the segment in it.
        assert!(image::load_from_memory(&bytes).is_ok());
        assert_eq!(Meta::from_bytes(&m.to_bytes()), Some(m));
    }

    #[test]
    fn falls_back_to_datetime_and_drops_unset_clock() {
        let bytes = with_exif(
            &small_jpeg(),
            &[
                ascii(Tag::DateTimeOriginal, "0000:00:00 00:00:00"),
                ascii(Tag::DateTime, "2019:12:31 23:59:58"),
                ascii(Tag::Model, "Canon EOS 5D"),
                ascii(Tag::Make, "Canon"),
            ],
        );
        let m = read(&bytes);
        assert_eq!(m.captured.as_deref(), Some("2019-12-31T23:59:58"));
        // The model already names the make.
        assert_eq!(m.camera.as_deref(), Some("Canon EOS 5D"));
        assert!(!m.gps);
    }

    #[test]
    fn no_exif_or_junk_is_empty() {
        assert_eq!(read(&small_jpeg()), Meta::default());
        assert_eq!(read(b"not an image at all"), Meta::default());
        assert_eq!(read(&[]), Meta::default());
        let mut broken = with_exif(&small_jpeg(), &[ascii(Tag::Make, "X")]);
        broken[12..20].copy_from_slice(&[0xFF; 8]);
        let _ = read(&broken); // never panics
    }
}
