//! Croissant 1.0 metadata (JSON-LD, <http://mlcommons.org/croissant/1.0>) of an export, written by
//! `assay export --croissant` beside the dataset card: the dataset's name, description and licenses (SPDX URLs),
//! the exported file as a `cr:FileObject` with its SHA-256, and one `cr:RecordSet` whose fields are the export's
//! columns with their `dataType` and `source.extract.column`.
//!
//! Croissant 1.0 has no type for a JSON object or a list of objects, so columns holding them (`provenance`,
//! `human_answers`, `assay_origin`) stay in the file but out of the record set; the description names them.

use serde_json::{json, Map, Value};

/// `conformsTo` of the metadata.
pub const CONFORMS_TO: &str = "http://mlcommons.org/croissant/1.0";

/// The `@id` of the exported file in `distribution`.
const FILE_ID: &str = "data-file";
/// The `@id` of the record set.
const RECORD_SET_ID: &str = "rows";

/// What the metadata says.
#[derive(Debug, Clone)]
pub struct CroissantInput<'a> {
    /// The dataset's name (the task's).
    pub name: &'a str,
    /// A sentence on what it is.
    pub description: String,
    /// SPDX license ids of the rows' datasets (`LicenseRef-` ids are left out: they have no URL).
    pub licenses: Vec<String>,
    /// The exported file's name, relative to the metadata file.
    pub data_file: &'a str,
    /// SHA-256 of the exported file.
    pub sha256: &'a str,
    /// `application/jsonlines` or `application/x-parquet`.
    pub encoding_format: &'a str,
    /// The exported rows, to type the columns.
    pub rows: &'a [Map<String, Value>],
}

/// The Croissant data type of a column's values, or `None` when they hold objects or lists (no Croissant 1.0
/// type) or mix booleans with other kinds. Nulls are ignored; a column of nulls only is text.
pub fn data_type<'v>(values: impl IntoIterator<Item = &'v Value>) -> Option<&'static str> {
    let (mut ints, mut floats, mut bools, mut strings) = (false, false, false, false);
    for value in values {
        match value {
            Value::Null => {}
            Value::Bool(_) => bools = true,
            Value::Number(n) if n.is_i64() || n.is_u64() => ints = true,
            Value::Number(_) => floats = true,
            Value::String(_) => strings = true,
            Value::Array(_) | Value::Object(_) => return None,
        }
    }
    match (bools, strings, floats, ints) {
        (true, false, false, false) => Some("sc:Boolean"),
        (true, _, _, _) => None,
        (false, true, _, _) => Some("sc:Text"),
        (false, false, true, _) => Some("sc:Float"),
        (false, false, false, true) => Some("sc:Integer"),
        (false, false, false, false) => Some("sc:Text"),
    }
}

/// The JSON-LD `@context` of Croissant 1.0, as the specification's examples write it.
fn context() -> Value {
    json!({
        "@language": "en",
        "@vocab": "https://schema.org/",
        "citeAs": "cr:citeAs",
        "column": "cr:column",
        "conformsTo": "dct:conformsTo",
        "cr": "http://mlcommons.org/croissant/",
        "rai": "http://mlcommons.org/croissant/RAI/",
        "data": {"@id": "cr:data", "@type": "@json"},
        "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
        "dct": "http://purl.org/dc/terms/",
        "equivalentProperty": "cr:equivalentProperty",
        "examples": {"@id": "cr:examples", "@type": "@json"},
        "extract": "cr:extract",
        "field": "cr:field",
        "fileProperty": "cr:fileProperty",
        "fileObject": "cr:fileObject",
        "fileSet": "cr:fileSet",
        "format": "cr:format",
        "includes": "cr:includes",
        "isLiveDataset": "cr:isLiveDataset",
        "jsonPath": "cr:jsonPath",
        "key": "cr:key",
        "md5": "cr:md5",
        "parentField": "cr:parentField",
        "path": "cr:path",
        "recordSet": "cr:recordSet",
        "references": "cr:references",
        "regex": "cr:regex",
        "repeated": "cr:repeated",
        "replace": "cr:replace",
        "samplingRate": "cr:samplingRate",
        "sc": "https://schema.org/",
        "separator": "cr:separator",
        "source": "cr:source",
        "subField": "cr:subField",
        "transform": "cr:transform"
    })
}

/// The metadata as JSON-LD.
pub fn render(input: &CroissantInput) -> Value {
    // Columns in first-seen order over all rows.
    let mut columns: Vec<&str> = Vec::new();
    for row in input.rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let mut fields = Vec::new();
    let mut left_out = Vec::new();
    for column in columns {
        match data_type(input.rows.iter().filter_map(|r| r.get(column))) {
            Some(data_type) => fields.push(json!({
                "@type": "cr:Field",
                "@id": format!("{RECORD_SET_ID}/{column}"),
                "name": column,
                "description": format!("The export's column `{column}`."),
                "dataType": data_type,
                "source": {"fileObject": {"@id": FILE_ID}, "extract": {"column": column}},
            })),
            None => left_out.push(format!("`{column}`")),
        }
    }
    let mut description = input.description.clone();
    if !left_out.is_empty() {
        description.push_str(&format!(
            " Columns holding JSON objects or lists, which Croissant 1.0 has no type for, are in the file but not \
             in the record set: {}.",
            left_out.join(", ")
        ));
    }
    let licenses: Vec<String> = input
        .licenses
        .iter()
        .filter(|id| !id.starts_with("LicenseRef-"))
        .map(|id| format!("https://spdx.org/licenses/{id}.html"))
        .collect();
    let mut doc = json!({
        "@context": context(),
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": input.name,
        "description": description,
        "url": input.data_file,
        "distribution": [{
            "@type": "cr:FileObject",
            "@id": FILE_ID,
            "name": input.data_file,
            "contentUrl": input.data_file,
            "encodingFormat": input.encoding_format,
            "sha256": input.sha256,
        }],
        "recordSet": [{
            "@type": "cr:RecordSet",
            "@id": RECORD_SET_ID,
            "name": RECORD_SET_ID,
            "description": "One record per exported row.",
            "field": fields,
        }],
    });
    match licenses.len() {
        0 => {}
        1 => doc["license"] = json!(licenses[0]),
        _ => doc["license"] = json!(licenses),
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_typed_and_nested_ones_left_out() {
        let rows: Vec<Map<String, Value>> = [
            json!({"text": "a", "n": 1, "p": 0.5, "tie": false, "provenance": {"run": "x"}, "none": null}),
            json!({"text": null, "n": 2, "p": 1, "tie": true, "provenance": {"run": "y"}, "none": null}),
        ]
        .iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let doc = render(&CroissantInput {
            name: "t",
            description: "d.".into(),
            licenses: vec!["CC-BY-4.0".into(), "LicenseRef-x".into()],
            data_file: "t.jsonl",
            sha256: "ab",
            encoding_format: "application/jsonlines",
            rows: &rows,
        });
        assert_eq!(doc["@type"], "sc:Dataset");
        assert_eq!(doc["conformsTo"], CONFORMS_TO);
        assert_eq!(doc["license"], "https://spdx.org/licenses/CC-BY-4.0.html");
        assert_eq!(doc["distribution"][0]["sha256"], "ab");
        let fields = doc["recordSet"][0]["field"].as_array().unwrap();
        let types: Vec<(&str, &str)> = fields
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f["dataType"].as_str().unwrap()))
            .collect();
        assert_eq!(
            types,
            [
                ("text", "sc:Text"),
                ("n", "sc:Integer"),
                ("p", "sc:Float"),
                ("tie", "sc:Boolean"),
                ("none", "sc:Text")
            ]
        );
        assert_eq!(fields[0]["source"]["extract"]["column"], "text");
        assert!(doc["description"]
            .as_str()
            .unwrap()
            .ends_with("not in the record set: `provenance`."));
        assert_eq!(data_type([&json!(true), &json!("x")]), None);
    }
}
