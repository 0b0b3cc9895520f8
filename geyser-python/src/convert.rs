//! Python-side names for Geyser's types: devices (`"cpu"`, `"cuda:0"`), dtypes (`"uint8"`…),
//! frame shapes, and the texture format a (dtype, channels) pair publishes as.

use geyser::common::{ElementType, TextureDescriptor, TextureFormat, FORMAT_TABLE};
use pyo3::prelude::*;

use crate::errors::invalid;

/// Where frames live for Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// Host memory (frames are copied out of the GPU through Vulkan).
    Cpu,
    /// A CUDA device, by ordinal.
    Cuda(usize),
}

impl Device {
    /// `"cpu"` or `"cuda:N"`.
    pub fn name(self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Cuda(n) => format!("cuda:{n}"),
        }
    }
}

/// Parses `None`/`"cpu"`, `"cuda"`, `"cuda:N"`, an int (a CUDA ordinal) or anything whose
/// `str()` is one of those (a `torch.device`).
pub fn parse_device(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Device> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Device::Cpu);
    };
    if let Ok(n) = obj.extract::<i64>() {
        return usize::try_from(n)
            .map(Device::Cuda)
            .map_err(|_| invalid(py, "device", format!("{n}; a CUDA ordinal is 0 or more")));
    }
    let s = obj.str()?.to_string();
    let t = s.trim().to_ascii_lowercase();
    match t.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => t
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| {
                invalid(
                    py,
                    "device",
                    format!("`{s}`; use \"cpu\", \"cuda\" or \"cuda:N\""),
                )
            }),
    }
}

/// NumPy's name of an element type.
pub fn dtype_name(e: ElementType) -> &'static str {
    match e {
        ElementType::U8 => "uint8",
        ElementType::I8 => "int8",
        ElementType::U16 => "uint16",
        ElementType::U32 => "uint32",
        ElementType::F16 => "float16",
        ElementType::F32 => "float32",
    }
}

/// The CUDA Array Interface `typestr` of an element type (little-endian).
pub fn typestr(e: ElementType) -> &'static str {
    match e {
        ElementType::U8 => "|u1",
        ElementType::I8 => "|i1",
        ElementType::U16 => "<u2",
        ElementType::U32 => "<u4",
        ElementType::F16 => "<f2",
        ElementType::F32 => "<f4",
    }
}

/// The element type a dtype names: a string (`"uint8"`), a NumPy dtype or type, or a torch
/// dtype (`torch.uint8`).
pub fn parse_dtype(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<ElementType> {
    let s = match obj.getattr("__name__") {
        Ok(name) if !obj.is_instance_of::<pyo3::types::PyString>() => name.str()?.to_string(),
        _ => obj.str()?.to_string(),
    };
    let name = s.trim().trim_start_matches("torch.").to_ascii_lowercase();
    [
        ElementType::U8,
        ElementType::I8,
        ElementType::U16,
        ElementType::U32,
        ElementType::F16,
        ElementType::F32,
    ]
    .into_iter()
    .find(|e| {
        dtype_name(*e) == name
            || (name == "half" && *e == ElementType::F16)
            || (name == "float" && *e == ElementType::F32)
    })
    .ok_or_else(|| {
        invalid(
            py,
            "dtype",
            format!("`{s}`; frames hold uint8, int8, uint16, uint32, float16 or float32"),
        )
    })
}

/// The format frames of `element` × `channels` publish as: the first linear (non-sRGB) row
/// of the format table with those texels (uint8 × 4 → rgba8unorm, float32 × 1 → r32float…).
pub fn format_for(element: ElementType, channels: u8) -> Option<TextureFormat> {
    FORMAT_TABLE
        .iter()
        .find(|row| {
            !row.srgb
                && row
                    .texels
                    .is_some_and(|t| t.element == element && t.count == channels)
        })
        .map(|row| row.format)
}

/// The array shape of a frame: `(height, width)` for one channel, else
/// `(height, width, channels)`.
pub fn frame_shape(desc: &TextureDescriptor) -> Vec<i64> {
    let channels = desc.format.texel_elements().map_or(1, |t| t.count);
    let (h, w) = (i64::from(desc.height), i64::from(desc.width));
    if channels == 1 {
        vec![h, w]
    } else {
        vec![h, w, i64::from(channels)]
    }
}
