//! The cost bound of a JSON-RPC body, checked before serde_json builds a
//! `Value` tree of it. A `Value` costs tens of bytes per element however
//! small the element's text is: 4 MiB of `[0,0,…]` made 2 M values and
//! about 150 MiB of heap. One pass over the bytes, allocating nothing,
//! counts the values and the nesting; a body over either limit is refused
//! whole, so what serde_json then builds is bounded by the limits (plus
//! the body's own bytes for strings).
//!
//! The scan does not validate: serde_json still rejects malformed JSON. It
//! only never counts less than what serde_json would build from the same
//! bytes, valid or not (a malformed body builds at most its valid prefix).

/// Nesting of arrays and objects. A batch of requests with object params is 3.
pub const MAX_DEPTH: usize = 16;
/// Values of a body, object keys included: a full batch of 1,000 requests
/// with a few params each fits.
pub const MAX_VALUES: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonCostError {
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error(
        "JSON body holds over {MAX_VALUES} values (object keys included); send smaller batches"
    )]
    TooManyValues,
}

/// Refuses `body` if parsing it into a `Value` could cost more than
/// [`MAX_DEPTH`] and [`MAX_VALUES`] allow.
pub fn check(body: &[u8]) -> Result<(), JsonCostError> {
    let (mut depth, mut values, mut i) = (0usize, 0usize, 0usize);
    while let Some(&byte) = body.get(i) {
        i += 1;
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(JsonCostError::TooDeep);
                }
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                continue;
            }
            b',' | b':' | b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'"' => i = string_end(body, i),
            // A number or literal (or garbage): one value up to the next delimiter.
            _ => {
                while body.get(i).is_some_and(|b| !is_delimiter(*b)) {
                    i += 1;
                }
            }
        }
        values += 1;
        if values > MAX_VALUES {
            return Err(JsonCostError::TooManyValues);
        }
    }
    Ok(())
}

/// The index after the closing quote of a string whose text starts at `i`.
fn string_end(body: &[u8], mut i: usize) -> usize {
    loop {
        match body.get(i) {
            None => return i,
            Some(b'"') => return i + 1,
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
        }
    }
}

fn is_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'[' | b']' | b'{' | b'}' | b',' | b':' | b'"' | b' ' | b'\t' | b'\r' | b'\n'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// Every value of a parsed tree, object keys included.
    fn count(value: &Value) -> usize {
        1 + match value {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(|v| 1 + count(v)).sum(),
            _ => 0,
        }
    }

    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn a_full_batch_of_ordinary_requests_is_within_the_bound() {
        let request = r#"{"jsonrpc": "2.0", "id": 17, "method": "gettxstatus", "params": ["ab\"c", {"verbose": true}]}"#;
        let batch = format!("[{}]", vec![request; 1000].join(","));
        assert_eq!(check(batch.as_bytes()), Ok(()));
    }

    #[test]
    fn many_small_values_or_deep_nesting_are_refused() {
        let zeros = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert_eq!(check(zeros.as_bytes()), Err(JsonCostError::TooManyValues));
        let empties = format!("[{}{{}}]", "{},".repeat(MAX_VALUES));
        assert_eq!(check(empties.as_bytes()), Err(JsonCostError::TooManyValues));
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(check(deep.as_bytes()), Err(JsonCostError::TooDeep));
        let just_deep_enough = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check(just_deep_enough.as_bytes()), Ok(()));
    }

    #[test]
    fn quotes_and_brackets_inside_strings_are_text() {
        let text = format!("[\"{}\\\"\"]", "[{,:".repeat(MAX_VALUES));
        assert_eq!(check(text.as_bytes()), Ok(()));
    }

    proptest! {
        /// The scan never counts fewer values, or less nesting, than the
        /// parsed tree has.
        #[test]
        fn the_scan_bounds_what_serde_json_builds(value in json_value()) {
            let text = value.to_string();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let within = count(&parsed) <= MAX_VALUES && depth(&parsed) <= MAX_DEPTH;
            prop_assert_eq!(check(text.as_bytes()).is_ok(), within);
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(20, 256, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((".{0,4}", inner), 0..8)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }
}
