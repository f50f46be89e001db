//! A table of optional columns (text, integers, floats, booleans) as a Parquet file, through
//! arrow-rs's `parquet` crate without Arrow: one row group, plain and dictionary encodings,
//! uncompressed (metadata tables are small beside their embeddings). pandas and pyarrow read it.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

/// A column's values, `None` for null.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Self::Text(v) => v.len(),
            Self::Int(v) => v.len(),
            Self::Float(v) => v.len(),
            Self::Bool(v) => v.len(),
        }
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) values: Values,
}

/// The Parquet file of `columns` (all of one length), every column optional.
pub(crate) fn write_table(columns: &[Column]) -> Result<Vec<u8>> {
    let rows = columns.first().map_or(0, |c| c.values.len());
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        anyhow::ensure!(column.values.len() == rows, "column {} has {} rows, not {rows}", column.name, column.values.len());
        let (physical, logical) = match column.values {
            Values::Text(_) => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
            Values::Int(_) => (PhysicalType::INT64, None),
            Values::Float(_) => (PhysicalType::DOUBLE, None),
            Values::Bool(_) => (PhysicalType::BOOLEAN, None),
        };
        let field = Type::primitive_type_builder(&column.name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
            .with_context(|| format!("parquet column {}", column.name))?;
        fields.push(Arc::new(field));
    }
    let schema = Arc::new(Type::group_type_builder("schema").with_fields(fields).build()?);
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, Arc::new(WriterProperties::builder().build()))?;
    let mut group = writer.next_row_group()?;
    for column in columns {
        let mut out = group.next_column()?.context("parquet: fewer column writers than columns")?;
        fn levels<T>(values: &[Option<T>]) -> Vec<i16> {
            values.iter().map(|v| i16::from(v.is_some())).collect()
        }
        match &column.values {
            Values::Text(v) => {
                let present: Vec<ByteArray> = v.iter().flatten().map(|s| ByteArray::from(s.as_str())).collect();
                out.typed::<ByteArrayType>().write_batch(&present, Some(&levels(v)), None)?;
            }
            Values::Int(v) => {
                let present: Vec<i64> = v.iter().flatten().copied().collect();
                out.typed::<Int64Type>().write_batch(&present, Some(&levels(v)), None)?;
            }
            Values::Float(v) => {
                let present: Vec<f64> = v.iter().flatten().copied().collect();
                out.typed::<DoubleType>().write_batch(&present, Some(&levels(v)), None)?;
            }
            Values::Bool(v) => {
                let present: Vec<bool> = v.iter().flatten().copied().collect();
                out.typed::<BoolType>().write_batch(&present, Some(&levels(v)), None)?;
            }
        }
        out.close()?;
    }
    group.close()?;
    Ok(writer.into_inner()?)
}

/// Columns from the top-level fields of JSON objects, one per row (`None`, or text that is not an
/// object, gives nulls), in field-name order, leaving out the names in `taken`. A column whose
/// values are all integers is `Int`, all numbers `Float`, all booleans `Bool`, all strings
/// `Text`; any other mix, or nested values, is `Text` holding each value's JSON (strings as they
/// are).
pub(crate) fn json_columns(rows: &[Option<String>], taken: &[&str]) -> Vec<Column> {
    let objects: Vec<Option<serde_json::Map<String, serde_json::Value>>> = rows
        .iter()
        .map(|row| row.as_deref().and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok()))
        .map(|value| match value {
            Some(serde_json::Value::Object(map)) => Some(map),
            _ => None,
        })
        .collect();
    let names: BTreeSet<&String> = objects.iter().flatten().flat_map(|map| map.keys()).filter(|k| !taken.contains(&k.as_str())).collect();
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let cells: Vec<Option<&serde_json::Value>> =
            objects.iter().map(|map| map.as_ref().and_then(|m| m.get(name)).filter(|v| !v.is_null())).collect();
        let present = || cells.iter().flatten();
        let values = if present().all(|v| v.is_i64()) {
            Values::Int(cells.iter().map(|v| v.and_then(serde_json::Value::as_i64)).collect())
        } else if present().all(|v| v.is_number()) {
            Values::Float(cells.iter().map(|v| v.and_then(serde_json::Value::as_f64)).collect())
        } else if present().all(|v| v.is_boolean()) {
            Values::Bool(cells.iter().map(|v| v.and_then(serde_json::Value::as_bool)).collect())
        } else {
            Values::Text(
                cells
                    .iter()
                    .map(|v| {
                        v.map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                    })
                    .collect(),
            )
        };
        columns.push(Column { name: name.clone(), values });
    }
    columns
}

/// Rows of a Parquet file read back as `column -> values as text` (nulls `None`), for tests.
#[cfg(test)]
fn read_back(bytes: Vec<u8>) -> std::collections::BTreeMap<String, Vec<Option<String>>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut &file, &bytes).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    let mut out = std::collections::BTreeMap::<String, Vec<Option<String>>>::new();
    for row in reader.get_row_iter(None).unwrap() {
        for (name, field) in row.unwrap().get_column_iter() {
            let text = match field {
                parquet::record::Field::Null => None,
                parquet::record::Field::Str(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            out.entry(name.clone()).or_default().push(text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_become_typed_columns_and_the_table_reads_back() {
        let rows = [
            Some(r#"{"url": "http://a/1.jpg", "width": 300, "score": 0.5, "ok": true, "exif": {"a": 1}, "caption": "x"}"#.to_owned()),
            None,
            Some(r#"{"url": "http://a/3.jpg", "width": 20, "score": 2, "ok": false, "exif": "none", "extra": null}"#.to_owned()),
            Some("not json".to_owned()),
        ];
        let columns = json_columns(&rows, &["caption"]);
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["exif", "extra", "ok", "score", "url", "width"]);
        assert_eq!(columns[5].values, Values::Int(vec![Some(300), None, Some(20), None]));
        assert_eq!(columns[3].values, Values::Float(vec![Some(0.5), None, Some(2.0), None]));
        assert_eq!(columns[2].values, Values::Bool(vec![Some(true), None, Some(false), None]));
        assert_eq!(columns[0].values, Values::Text(vec![Some(r#"{"a":1}"#.into()), None, Some("none".into()), None]));
        let table = read_back(write_table(&columns).unwrap());
        assert_eq!(table["url"], [Some("http://a/1.jpg".into()), None, Some("http://a/3.jpg".into()), None]);
        assert_eq!(table["width"], [Some("300".into()), None, Some("20".into()), None]);
        assert_eq!(table["extra"], [None, None, None, None]);
    }

    #[test]
    fn an_empty_table_is_a_valid_file() {
        let columns = [Column { name: "key".into(), values: Values::Text(Vec::new()) }];
        assert!(read_back(write_table(&columns).unwrap()).is_empty());
    }
}
