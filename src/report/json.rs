//! The JSON report: its writer and the one validated reader of plans.

use super::{Report, SCHEMA_VERSION};
use serde::Deserialize;
use std::io::Write;

/// The report as pretty JSON followed by a newline.
pub fn write_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

/// Parse a JSON report back.
pub fn read_json(text: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(text)
}

/// The largest plan [`read_plan`] reads (a million groups fit well below).
pub const PLAN_CAP: u64 = 1 << 30;

/// The deepest nesting of arrays and objects [`read_plan`] accepts (a
/// report nests 6 levels).
pub const PLAN_MAX_DEPTH: usize = 32;

/// Read a plan (a report, maybe edited) the one validated way, for both
/// `neardup report` and `neardup apply`: a regular file of at most
/// [`PLAN_CAP`] bytes (never a FIFO or a device), valid JSON without a
/// duplicated key anywhere and nested at most [`PLAN_MAX_DEPTH`] levels,
/// `tool.name` "neardup", this [`SCHEMA_VERSION`], then the typed report.
pub fn read_plan(path: &std::path::Path) -> Result<Report, crate::Error> {
    use serde::de::DeserializeSeed;
    let shown = path.display();
    let fail =
        |why: String| crate::Error::Plan(format!("{shown} is not a neardup JSON report: {why}"));
    let text = crate::open::read_text_capped(path, PLAN_CAP).map_err(|e| match e {
        crate::open::ReadError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            fail("not text".into())
        }
        e => crate::Error::Plan(format!("cannot read {shown}: {e}")),
    })?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let shape = StrictShape { depth: 0 }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = shape {
        return Err(fail(match e.classify() {
            serde_json::error::Category::Data => e.to_string(),
            _ => format!("not valid JSON: {e}"),
        }));
    }
    #[derive(Deserialize)]
    struct Probe {
        tool: Option<serde_json::Value>,
        schema_version: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let name = probe
        .tool
        .as_ref()
        .and_then(|t| t.get("name"))
        .and_then(|n| n.as_str());
    if name != Some("neardup") {
        return Err(fail("no tool.name \"neardup\"".into()));
    }
    match probe.schema_version {
        None => return Err(fail("no schema_version".into())),
        Some(v) if v.as_u64() == Some(SCHEMA_VERSION as u64) => {}
        Some(v) => {
            return Err(crate::Error::Plan(format!(
                "{shown} has schema_version {v}; this neardup reads version {SCHEMA_VERSION}"
            )))
        }
    }
    serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
}

/// Walks any JSON value, refusing a key given twice in one object and
/// nesting deeper than [`PLAN_MAX_DEPTH`] (serde's derive would keep the
/// last of two keys in maps and ignored fields; `serde_json::Value` too).
struct StrictShape {
    depth: usize,
}

impl StrictShape {
    fn deeper<E: serde::de::Error>(&self) -> Result<StrictShape, E> {
        if self.depth >= PLAN_MAX_DEPTH {
            return Err(E::custom(format!(
                "nested deeper than {PLAN_MAX_DEPTH} levels"
            )));
        }
        Ok(StrictShape {
            depth: self.depth + 1,
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for StrictShape {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictShape {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq
            .next_element_seed(StrictShape { depth: inner.depth })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let mut keys = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !keys.insert(k.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {k:?} is given twice in one object"
                )));
            }
            map.next_value_seed(StrictShape { depth: inner.depth })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn json_round_trips_into_typed_structs() {
        let r = sample();
        let mut buf = Vec::new();
        write_json(&r, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(read_json(&text).unwrap(), r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["stats"]["skipped"][0]["kind"], "not_an_image");
        assert_eq!(v["parameters"]["centre"], "data_mean");
        assert!(v["stats"].get("seconds").is_none());
        assert_eq!(v["groups"][0]["files"][1], "album/b.png");
        assert_eq!(v["groups"][0]["keeper"], "album/a.jpg");
        assert_eq!(
            v["groups"][0]["members"][0]["modified"],
            "2020-09-13T12:26:40Z"
        );
        assert_eq!(v["parameters"]["keep"][0], "pixels");
        // Members without metadata carry no empty fields.
        assert!(v["groups"][0]["members"][1].get("captured").is_none());
    }

    #[test]
    fn reports_without_the_new_fields_still_parse() {
        let mut v = serde_json::to_value(sample()).unwrap();
        for k in ["reference", "keep"] {
            v["parameters"].as_object_mut().unwrap().remove(k);
        }
        let g = v["groups"][0].as_object_mut().unwrap();
        g.remove("keeper");
        g.remove("keeper_reason");
        let m = v["groups"][0]["members"][0].as_object_mut().unwrap();
        for k in [
            "mtime_ns",
            "modified",
            "content",
            "captured",
            "camera",
            "gps",
            "exif_fields",
        ] {
            m.remove(k);
        }
        let r = read_json(&v.to_string()).unwrap();
        assert_eq!(r.groups[0].keeper, None);
        assert_eq!(r.groups[0].members[0].content, None);
        assert!(r.parameters.keep.is_empty());
    }

    #[test]
    fn read_plan_refuses_duplicate_keys_deep_nesting_and_other_versions() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("plan.json");
        let text = serde_json::to_string(&sample()).unwrap();
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_plan(&p).unwrap(), sample());
        let refusal = |body: &str| {
            std::fs::write(&p, body).unwrap();
            read_plan(&p).unwrap_err().to_string()
        };
        // A second keeper (the old apply reader, through Value, took it).
        let dup = text.replacen("\"keeper\":", "\"keeper\":\"album/b.png\",\"keeper\":", 1);
        let e = refusal(&dup);
        assert!(e.contains("\"keeper\" is given twice"), "{e}");
        let e = refusal(&text.replacen("{", "{\"x\":1,\"x\":1,", 1));
        assert!(e.contains("\"x\" is given twice"), "{e}");
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let e = refusal(&text.replacen("{", &format!("{{\"x\":{deep},"), 1));
        assert!(e.contains("nested deeper than 32 levels"), "{e}");
        let e = refusal(&text.replacen("\"schema_version\":1", "\"schema_version\":2", 1));
        assert!(e.contains("has schema_version 2"), "{e}");
        let e = refusal("{\"groups\": []}");
        assert!(
            e.contains("is not a neardup JSON report: no tool.name"),
            "{e}"
        );
        let e = refusal(&text[..text.len() / 2]);
        assert!(e.contains("not valid JSON"), "{e}");
        let e = read_plan(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
