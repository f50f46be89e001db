//! The reference values written by `scripts/gen_eval_fixtures.py`.

use std::sync::OnceLock;

pub(crate) fn fixture() -> &'static serde_json::Value {
    static FIXTURE: OnceLock<serde_json::Value> = OnceLock::new();
    FIXTURE.get_or_init(|| serde_json::from_str(include_str!("fixtures/eval.json")).unwrap())
}

pub(crate) fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

pub(crate) fn ints(v: &serde_json::Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

/// A `[rows, columns]` float tensor from a JSON array of arrays.
pub(crate) fn matrix(v: &serde_json::Value) -> tch::Tensor {
    let rows: Vec<Vec<f32>> = v.as_array().unwrap().iter().map(floats).collect();
    let columns = rows[0].len() as i64;
    tch::Tensor::from_slice(&rows.concat()).view([-1, columns])
}
