//! The key names a config struct accepts, read from its `Deserialize` impl, so the
//! documentation can be checked against the code (see `docs/configuration.md`).

use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::forward_to_deserialize_any;

/// The keys `T` accepts as serde sees them: field names after `rename`, in declaration
/// order, with `alias` names included (serde lists them too). Empty when `T` does not
/// deserialize from a struct.
pub fn field_names<T: DeserializeOwned>() -> Vec<&'static str> {
    let mut fields = Vec::new();
    // The probe always fails once it has seen the struct; the error is expected.
    let _ = T::deserialize(Probe {
        fields: &mut fields,
    });
    fields
}

struct Probe<'a> {
    fields: &'a mut Vec<&'static str>,
}

#[derive(Debug)]
struct Stop(String);

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Stop(msg.to_string())
    }
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop("field_names: not a struct".to_owned()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.fields.extend_from_slice(fields);
        Err(Stop("field_names: fields recorded".to_owned()))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Plain {
        a: u32,
        b: Option<String>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Defaulted {
        first: Vec<u32>,
        #[serde(rename = "second_name")]
        second: bool,
        #[serde(alias = "old_third")]
        third: u8,
    }

    #[test]
    fn introspect_lists_fields_of_a_plain_struct() {
        assert_eq!(field_names::<Plain>(), ["a", "b"]);
    }

    #[test]
    fn introspect_lists_fields_of_a_default_struct_with_renames_and_aliases() {
        let mut fields = field_names::<Defaulted>();
        fields.sort_unstable();
        assert_eq!(fields, ["first", "old_third", "second_name", "third"]);
    }

    #[test]
    fn introspect_is_empty_for_a_non_struct() {
        assert!(field_names::<u32>().is_empty());
        assert!(field_names::<Vec<String>>().is_empty());
    }
}
