//! Member records and view data are compressed before they are sealed: zstd (level 4) with a
//! dictionary of the data standard's shapes, so that a record of a few hundred bytes compresses
//! as well as a long one. A dictionary holds no data, and a test derives each from the schema
//! again:
//!
//! - [`v2.dict`](packed/v2.dict), the one records are packed with: the skeleton of a match
//!   record and of a definite arrangement of `schemas/ViewDataPayload.json` as they are written
//!   (every property, keys in the order they are written, each string empty or its first code,
//!   each number 0, each list one item), so that the runs of names and punctuation a record
//!   shares with it cost a match each;
//! - [`v1.dict`](packed/v1.dict): every property name and code of the schema and the match
//!   record's field names; records packed with it still open.
//!
//! A packed record starts with a mark byte no JSON starts with and the dictionary's version,
//! then the zstd frame; a record stored as plain JSON is read as it is. A new dictionary
//! is a new version beside the old one, never an edit of it: records packed with it must open.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::sealed::{DataKey, SealError};

/// First byte of a packed record (JSON starts with `{`, `[`, a quote, a digit or a letter).
const MARK: u8 = 0xDC;
/// The dictionaries' versions.
const V1: u8 = 1;
const V2: u8 = 2;
const DICT_V1: &[u8] = include_bytes!("packed/v1.dict");
const DICT_V2: &[u8] = include_bytes!("packed/v2.dict");
const LEVEL: i32 = 4;
/// The largest record unpacked: far above any member record or view data (imports bound them).
const MAX_UNPACKED: usize = 4 << 20;

fn encoder() -> &'static zstd::dict::EncoderDictionary<'static> {
    static DICT: OnceLock<zstd::dict::EncoderDictionary<'static>> = OnceLock::new();
    DICT.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICT_V2, LEVEL))
}

fn decoder(version: u8) -> &'static zstd::dict::DecoderDictionary<'static> {
    static DICTS: [OnceLock<zstd::dict::DecoderDictionary<'static>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    let (slot, dict) = if version == V1 {
        (&DICTS[0], DICT_V1)
    } else {
        (&DICTS[1], DICT_V2)
    };
    slot.get_or_init(|| zstd::dict::DecoderDictionary::copy(dict))
}

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    /// A decompressor for each dictionary version, made on first use.
    static DECOMPRESSORS: RefCell<[Option<zstd::bulk::Decompressor<'static>>; 2]> =
        const { RefCell::new([None, None]) };
}

/// `json` packed.
pub(super) fn pack(json: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let c = c.get_or_insert_with(|| {
            zstd::bulk::Compressor::with_prepared_dictionary(encoder())
                .expect("a zstd context with a prepared dictionary")
        });
        let frame = c.compress(json).expect("zstd compresses in memory");
        let mut out = Vec::with_capacity(2 + frame.len());
        out.extend_from_slice(&[MARK, V2]);
        out.extend_from_slice(&frame);
        out
    })
}

/// A record as stored, unpacked: a packed one decompressed, JSON as it is.
pub(super) fn unpack(plain: Vec<u8>) -> Result<Vec<u8>, SealError> {
    match plain.as_slice() {
        [MARK, version @ (V1 | V2), frame @ ..] => DECOMPRESSORS.with(|d| {
            let mut d = d.borrow_mut();
            let d = d[usize::from(*version - V1)].get_or_insert_with(|| {
                zstd::bulk::Decompressor::with_prepared_dictionary(decoder(*version))
                    .expect("a zstd context with a prepared dictionary")
            });
            d.decompress(frame, MAX_UNPACKED)
                .map_err(|_| SealError::Unpack)
        }),
        [MARK, ..] => Err(SealError::Unpack),
        _ => Ok(plain),
    }
}

/// `json` packed and sealed with `key`, bound to `aad`.
pub(super) fn seal(key: &DataKey, aad: &[u8], json: &[u8]) -> Vec<u8> {
    key.seal(aad, &pack(json))
}

/// A sealed record opened and unpacked.
pub(super) fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    unpack(key.open(aad, sealed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_records_round_trip_and_unpacked_ones_read_as_they_are() {
        let json =
            br#"{"pensionProviderSchemeName":"Acme","pensionType":"DC","possibleMatch":false}"#;
        let packed = pack(json);
        assert_eq!(packed[0], MARK);
        assert!(packed.len() < json.len());
        assert_eq!(unpack(packed).unwrap(), json);
        assert_eq!(unpack(json.to_vec()).unwrap(), json);
        assert!(matches!(unpack(vec![MARK, 9, 1]), Err(SealError::Unpack)));
        assert!(matches!(
            unpack(vec![MARK, V1, 1, 2]),
            Err(SealError::Unpack)
        ));
        assert_eq!(packed_with(V1, json)[1], V1);
        assert_eq!(unpack(packed_with(V1, json)).unwrap(), json);
        let key = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
        assert_eq!(open(&key, b"a", &seal(&key, b"a", json)).unwrap(), json);
    }

    /// The dictionary is the schema's property names and codes and the match record's field
    /// names, nothing else: every fragment of it comes from them, and every one of them is in it.
    #[test]
    fn the_dictionary_is_the_standards_names_and_codes() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/ViewDataPayload.json")).unwrap();
        let (mut names, mut codes) = (Vec::new(), Vec::new());
        fn walk(v: &serde_json::Value, names: &mut Vec<String>, codes: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, x) in m {
                        if let (true, Some(p)) = (k == "properties", x.as_object()) {
                            names.extend(p.keys().cloned());
                        }
                        if let (true, Some(e)) = (k == "enum", x.as_array()) {
                            codes.extend(e.iter().filter_map(|c| c.as_str().map(str::to_owned)));
                        }
                        walk(x, names, codes);
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, names, codes)),
                _ => {}
            }
        }
        walk(&schema, &mut names, &mut codes);
        let record = serde_json::to_value(crate::matching::record::MatchRecord {
            member_id: String::new(),
            holdername: uuid::Uuid::nil(),
            names: vec![crate::matching::record::MemberName {
                given_name: String::new(),
                family_name: String::new(),
            }],
            previous_family_names: Vec::new(),
            date_of_birth: String::new(),
            nino: None,
            postcodes: Vec::new(),
            previous_postcodes: Vec::new(),
            pensions: vec![crate::matching::record::PensionKey {
                asset_guid: uuid::Uuid::nil(),
                scheme_name: String::new(),
            }],
        })
        .unwrap();
        let dict = std::str::from_utf8(DICT_V1).unwrap();
        let quoted: Vec<&str> = dict
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        let mut known: Vec<String> = names.iter().chain(&codes).cloned().collect();
        known.extend(record.as_object().unwrap().keys().cloned());
        known.extend([
            "givenName".into(),
            "familyName".into(),
            "assetGuid".into(),
            "schemeName".into(),
        ]);
        for q in &quoted {
            assert!(
                known.iter().any(|k| k == q),
                "{q} is in the dictionary, not the standard"
            );
        }
        for k in names.iter().chain(&codes) {
            assert!(
                quoted.contains(&k.as_str()),
                "{k} is missing from the dictionary"
            );
        }
    }

    /// `json` packed with dictionary `version`, as a store written with it holds it.
    fn packed_with(version: u8, json: &[u8]) -> Vec<u8> {
        let dict = if version == V1 { DICT_V1 } else { DICT_V2 };
        let frame = zstd::bulk::Compressor::with_dictionary(LEVEL, dict)
            .unwrap()
            .compress(json)
            .unwrap();
        [&[MARK, version][..], &frame].concat()
    }

    /// The skeleton of what `schema` describes (`defs`: the schema's `$defs`): every property,
    /// each string empty or its first code, each number 0, each list one item.
    fn skeleton(schema: &serde_json::Value, defs: &serde_json::Value) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let mut s = schema;
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            s = &defs[r.rsplit('/').next().unwrap()];
        }
        for k in ["oneOf", "anyOf", "allOf"] {
            let Some(alts) = s.get(k).and_then(Value::as_array) else {
                continue;
            };
            let mut props = Map::new();
            for alt in alts {
                let mut a = alt;
                while let Some(r) = a.get("$ref").and_then(Value::as_str) {
                    a = &defs[r.rsplit('/').next().unwrap()];
                }
                match a.get("properties").and_then(Value::as_object) {
                    Some(p) => props.extend(p.clone()),
                    None if a.get("type") != Some(&json!("object")) => return skeleton(a, defs),
                    None => {}
                }
            }
            if let Some(p) = s.get("properties").and_then(Value::as_object) {
                props.extend(p.clone());
            }
            return skeleton(&json!({"type": "object", "properties": props}), defs);
        }
        let t = match s.get("type") {
            Some(Value::Array(a)) => a.first().and_then(Value::as_str),
            t => t.and_then(Value::as_str),
        };
        if t == Some("object") || s.get("properties").is_some() {
            let props = s.get("properties").and_then(Value::as_object);
            let out = props.into_iter().flatten();
            return Value::Object(out.map(|(k, v)| (k.clone(), skeleton(v, defs))).collect());
        }
        if t == Some("array") {
            return json!([skeleton(s.get("items").unwrap_or(&json!({})), defs)]);
        }
        if let Some(code) = s.get("enum").and_then(|e| e.get(0)) {
            return code.clone();
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        match t {
            Some("number" | "integer") => json!(0),
            Some("boolean") => json!(false),
            _ => json!(""),
        }
    }

    /// The second dictionary is the skeleton of a match record and of a definite arrangement,
    /// as they are written, and nothing else.
    #[test]
    fn the_second_dictionary_is_the_skeleton_of_a_record_and_an_arrangement() {
        use crate::matching::record::{MatchRecord, MemberName, PensionKey};
        let record = MatchRecord {
            member_id: String::new(),
            holdername: uuid::Uuid::nil(),
            names: vec![MemberName {
                given_name: String::new(),
                family_name: String::new(),
            }],
            previous_family_names: vec![String::new()],
            date_of_birth: String::new(),
            nino: Some(String::new()),
            postcodes: vec![String::new()],
            previous_postcodes: vec![String::new()],
            pensions: vec![PensionKey {
                asset_guid: uuid::Uuid::nil(),
                scheme_name: String::new(),
            }],
        };
        let record = serde_json::to_string(&record)
            .unwrap()
            .replace(&uuid::Uuid::nil().to_string(), "");
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/ViewDataPayload.json")).unwrap();
        let defs = &schema["$defs"];
        let arrangement = skeleton(&defs["definiteMatchPensionArrangement"], defs).to_string();
        let derived = record + &arrangement;
        assert!(
            derived.as_bytes() == DICT_V2,
            "v2.dict is not the skeleton; derived:\n{derived}"
        );
        // What a generated arrangement costs packed with each dictionary.
        let member = crate::members::generate::member(1, 1, &crate::members::generate::schemes(1));
        let view = serde_json::to_vec(&member.pensions[0].view_data).unwrap();
        let (v1, v2) = (packed_with(V1, &view).len(), pack(&view).len());
        assert!(v2 < v1, "v2 {v2} bytes, v1 {v1}");
        assert_eq!(unpack(pack(&view)).unwrap(), view);
    }
}
