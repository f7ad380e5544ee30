//! Member records and view data are compressed before they are sealed: zstd (level 3) with a
//! dictionary of the data standard's field names and codes, so that a record of a few hundred
//! bytes compresses as well as a long one. The dictionary holds no data: its text is every
//! property name and enumerated code of `schemas/ViewDataPayload.json` and the match record's
//! field names ([`v1.dict`](packed/v1.dict)); a test derives it from the schema again.
//!
//! A packed record starts with a mark byte no JSON starts with and the dictionary's version,
//! then the zstd frame; a record stored as plain JSON is read as it is. A new dictionary
//! is a new version beside the old one, never an edit of it: records packed with it must open.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::sealed::{DataKey, SealError};

/// First byte of a packed record (JSON starts with `{`, `[`, a quote, a digit or a letter).
const MARK: u8 = 0xDC;
/// The dictionary's version.
const V1: u8 = 1;
const DICT_V1: &[u8] = include_bytes!("packed/v1.dict");
const LEVEL: i32 = 3;
/// The largest record unpacked: far above any member record or view data (imports bound them).
const MAX_UNPACKED: usize = 4 << 20;

fn encoder() -> &'static zstd::dict::EncoderDictionary<'static> {
    static DICT: OnceLock<zstd::dict::EncoderDictionary<'static>> = OnceLock::new();
    DICT.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICT_V1, LEVEL))
}

fn decoder() -> &'static zstd::dict::DecoderDictionary<'static> {
    static DICT: OnceLock<zstd::dict::DecoderDictionary<'static>> = OnceLock::new();
    DICT.get_or_init(|| zstd::dict::DecoderDictionary::copy(DICT_V1))
}

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
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
        out.extend_from_slice(&[MARK, V1]);
        out.extend_from_slice(&frame);
        out
    })
}

/// A record as stored, unpacked: a packed one decompressed, JSON as it is.
pub(super) fn unpack(plain: Vec<u8>) -> Result<Vec<u8>, SealError> {
    match plain.as_slice() {
        [MARK, V1, frame @ ..] => DECOMPRESSOR.with(|d| {
            let mut d = d.borrow_mut();
            let d = d.get_or_insert_with(|| {
                zstd::bulk::Decompressor::with_prepared_dictionary(decoder())
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
}
