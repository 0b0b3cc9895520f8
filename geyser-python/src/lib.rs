//! The `geyser` Python module.
use pyo3::prelude::*;

#[pymodule]
fn geyser(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
