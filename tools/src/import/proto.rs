//! Reading ONNX protobuf pieces: tensors (initializers, constant attributes) and value infos.

use tract_onnx::pb::{tensor_proto::DataType, TensorProto};
use tract_onnx::tract_core::prelude::DatumType;

use super::value::{ConstT, Data};
use super::ImportError;

/// Loads a TensorProto as a constant (raw data, typed fields or external data).
pub fn load_tensor(t: &TensorProto, name: &str, model_dir: Option<&str>) -> Result<ConstT, ImportError> {
    let err = |detail: String| ImportError::Tensor { tensor: name.to_string(), detail };
    let dt = DataType::try_from(t.data_type).map_err(|_| err(format!("unknown data type code {}", t.data_type)))?;
    let is_float = matches!(dt, DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16);
    let is_int = matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Uint8
            | DataType::Uint16
            | DataType::Uint32
            | DataType::Uint64
            | DataType::Bool
    );
    if !is_float && !is_int {
        return Err(err(format!("data type {} is not supported", dt.as_str_name())));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        shape.push(usize::try_from(d).map_err(|_| err(format!("negative dimension {d}")))?);
    }
    let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| err("too many elements".into()))?;
    if numel > super::MAX_ELEMENTS {
        return Err(err(format!("shape {shape:?} has more elements than the limit of {} (2^28)", super::MAX_ELEMENTS)));
    }
    let width = match dt {
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        _ => 1,
    };
    let external = t.data_location == Some(tract_onnx::pb::tensor_proto::DataLocation::External as i32);
    if external {
        check_external(t, numel * width, model_dir).map_err(err)?;
    } else if !t.raw_data.is_empty() && t.raw_data.len() != numel * width {
        return Err(err(format!(
            "raw data holds {} bytes but shape {shape:?} of {} needs {}",
            t.raw_data.len(),
            dt.as_str_name(),
            numel * width
        )));
    } else if t.raw_data.is_empty() {
        let have = match dt {
            DataType::Float => t.float_data.len(),
            DataType::Double => t.double_data.len(),
            DataType::Int64 => t.int64_data.len(),
            DataType::Uint32 | DataType::Uint64 => t.uint64_data.len(),
            _ => t.int32_data.len(),
        };
        if have != numel {
            return Err(err(format!("holds {have} values for shape {shape:?}")));
        }
    }
    if dt == DataType::Bfloat16 {
        // tract has no bf16 DatumType: decode raw bytes (or int32_data) by hand.
        let v: Vec<f32> = if !t.raw_data.is_empty() {
            t.raw_data.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect()
        } else {
            t.int32_data.iter().map(|&x| f32::from_bits((x as u32 & 0xffff) << 16)).collect()
        };
        if v.len() != numel {
            return Err(err(format!("holds {} values for shape {shape:?}", v.len())));
        }
        return Ok(ConstT::new(name, shape, Data::F(v)));
    }
    let provider = tract_onnx::data_resolver::default();
    let tt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tract_onnx::tensor::load_tensor(&*provider, t, model_dir)))
        .map_err(|_| err("the tensor decoder panicked".into()))?
        .map_err(|e| err(format!("{e:#}")))?;
    if tt.len() != numel {
        return Err(err(format!("holds {} values for shape {shape:?}", tt.len())));
    }
    let data = if is_float {
        let c = tt.cast_to::<f32>().map_err(|e| err(format!("{e:#}")))?;
        let v = c.try_as_plain_ram().and_then(|v| v.as_slice::<f32>().map(|s| s.to_vec())).map_err(|e| err(format!("{e:#}")))?;
        Data::F(v)
    } else if tt.datum_type() == DatumType::Bool {
        let v = tt.try_as_plain_ram().and_then(|v| v.as_slice::<bool>().map(|s| s.to_vec())).map_err(|e| err(format!("{e:#}")))?;
        Data::I(v.into_iter().map(|b| b as i64).collect())
    } else {
        let c = tt.cast_to::<i64>().map_err(|e| err(format!("{e:#}")))?;
        let v = c.try_as_plain_ram().and_then(|v| v.as_slice::<i64>().map(|s| s.to_vec())).map_err(|e| err(format!("{e:#}")))?;
        Data::I(v)
    };
    Ok(ConstT { name: name.to_string(), shape, data, shared: true, elem: t.data_type })
}

/// Checks an external-data reference before anything is read: the location must be a relative
/// path that stays inside the model's folder (no `..`, not absolute, no symbolic link out of it),
/// and the stated byte range must lie in the file and hold exactly `need` bytes.
fn check_external(t: &TensorProto, need: usize, model_dir: Option<&str>) -> Result<(), String> {
    use std::path::{Component, Path};
    let get = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
    let loc = get("location").unwrap_or("");
    let Some(dir) = model_dir else {
        return Err(format!("external data (`{loc}`) cannot be read: the model was given as bytes, with no folder"));
    };
    if loc.is_empty() {
        return Err("external data without a `location`".into());
    }
    let rel = Path::new(loc);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("external data location `{loc}` leaves the model's folder (absolute, `..` or a drive prefix)"));
    }
    let dir = if dir.is_empty() { "." } else { dir };
    let canon_dir = std::fs::canonicalize(dir).map_err(|e| format!("external data `{loc}`: model folder {dir}: {e}"))?;
    let file = std::fs::canonicalize(Path::new(dir).join(rel)).map_err(|e| format!("external data `{loc}`: {e}"))?;
    if !file.starts_with(&canon_dir) {
        return Err(format!("external data location `{loc}` resolves outside the model's folder (to {})", file.display()));
    }
    let size = std::fs::metadata(&file).map_err(|e| format!("external data `{loc}`: {e}"))?.len();
    let num = |k: &str| -> Result<Option<u64>, String> {
        get(k).map(|v| v.parse::<u64>().map_err(|_| format!("external data `{loc}`: {k} `{v}` is not a byte count"))).transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let length = num("length")?.unwrap_or(size.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(format!("external data `{loc}`: bytes {offset}..{offset}+{length} lie beyond the file's {size} bytes"));
    }
    if length != need as u64 {
        return Err(format!("external data `{loc}`: {length} bytes where the shape needs {need}"));
    }
    Ok(())
}

/// True for ONNX element types the importer treats as float activations.
pub fn is_float_type(elem_type: i32) -> bool {
    matches!(DataType::try_from(elem_type), Ok(DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16))
}

/// True for the integer element types f32 carries exactly (int8, uint8, int16, uint16): graph
/// inputs of these types (quantized models) become f32 inputs holding the integers.
pub fn is_small_int_type(elem_type: i32) -> bool {
    matches!(DataType::try_from(elem_type), Ok(DataType::Int8 | DataType::Uint8 | DataType::Int16 | DataType::Uint16))
}

/// Name of an ONNX element type.
pub fn type_name(elem_type: i32) -> &'static str {
    DataType::try_from(elem_type).map(|d| d.as_str_name()).unwrap_or("UNKNOWN")
}
