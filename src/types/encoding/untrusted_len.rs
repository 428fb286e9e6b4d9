//! A serde adapter that treats every length prefix as a claim, not a fact.
//!
//! Without it, serde's collection visitors reserve room for as many elements
//! as the prefix claims (up to 1 MiB per collection, from a 20-byte input),
//! and bincode decodes an owned string or byte buffer by allocating the
//! claimed length before reading it (up to the 64 MiB backstop). Behind
//! [`Untrusted`], collections grow only with elements actually decoded, and
//! strings and byte buffers are borrowed from the input and copied at their
//! real length, so memory follows the bytes received, never the bytes claimed.
//!
//! It must never change what decodes or into what: it only forwards.

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use std::fmt;

/// Wraps a deserializer, visitor, seed or access so that the whole decode
/// below it stays wrapped.
pub(super) struct Untrusted<T>(pub(super) T);

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Untrusted(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Untrusted<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_bytes
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    /// Borrowed, then copied at its real length by the visitor.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_str(Untrusted(visitor))
    }

    /// Borrowed, then copied at its real length by the visitor.
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_bytes(Untrusted(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Untrusted(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Untrusted(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Untrusted(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Untrusted(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Untrusted(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Untrusted(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Untrusted<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool)
        visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128)
        visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128)
        visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Untrusted(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Untrusted(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Untrusted(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Untrusted(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Untrusted(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Untrusted<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Untrusted(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Untrusted<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Untrusted(seed))
    }

    /// No hint: the count is the sender's claim, so nothing is reserved for it.
    fn size_hint(&self) -> Option<usize> {
        None
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Untrusted<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Untrusted(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Untrusted(seed))
    }

    /// No hint: the count is the sender's claim, so nothing is reserved for it.
    fn size_hint(&self) -> Option<usize> {
        None
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Untrusted<A> {
    type Error = A::Error;
    type Variant = Untrusted<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        self.0
            .variant_seed(Untrusted(seed))
            .map(|(value, variant)| (value, Untrusted(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Untrusted<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Untrusted(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Untrusted(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Untrusted(visitor))
    }
}

#[cfg(test)]
mod tests {
    use crate::types::encoding::{decode, encode};
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Empty,
        Newtype(u16),
        Tuple(i8, char),
        Struct {
            name: String,
            tail: Option<Box<Shape>>,
        },
    }

    /// Every serde data model kind, so each forwarding path is taken.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        flag: bool,
        wide: (i128, u128, f32, f64),
        text: String,
        #[serde(with = "serde_bytes")]
        blob: Vec<u8>,
        list: Vec<u32>,
        map: BTreeMap<u8, String>,
        maybe: Option<u64>,
        unit: (),
        unit_struct: Unit,
        shapes: Vec<Shape>,
    }

    #[test]
    fn decodes_every_data_model_kind_unchanged() {
        let value = Everything {
            flag: true,
            wide: (-1, u128::MAX, 1.5, -2.25),
            text: "timecoin ✓".to_string(),
            blob: vec![0, 1, 2, 255],
            list: vec![7, 8, 9],
            map: BTreeMap::from([(1, "one".to_string()), (2, String::new())]),
            maybe: Some(42),
            unit: (),
            unit_struct: Unit,
            shapes: vec![
                Shape::Empty,
                Shape::Newtype(3),
                Shape::Tuple(-4, 'x'),
                Shape::Struct {
                    name: "outer".to_string(),
                    tail: Some(Box::new(Shape::Empty)),
                },
            ],
        };
        let bytes = encode(&value);
        assert_eq!(
            decode::<Everything>(&bytes, bytes.len(), "everything"),
            Ok(value)
        );
    }
}
