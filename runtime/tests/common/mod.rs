//! Helpers shared by the whole-file tests: rewriting the digits CNN's constants and operator
//! records, placing a file at a chosen alignment, and running it.
#![allow(dead_code)]

use sprig_runtime::format::{self, section};
use sprig_runtime::{Error, Model, Session};

pub const DIGITS: &[u8] = include_bytes!("../../../tools/tests/data/digits_cnn_v1.0.sprig");

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// `file` with its sections passed through `edit` (kind, body), re-laid out with lengths and
/// CRCs redone, declaring format version 1.`minor`.
pub fn with_sections(file: &[u8], minor: u16, edit: impl FnOnce(&mut [(u32, Vec<u8>)])) -> Vec<u8> {
    let n = u32_at(file, 12) as usize;
    let mut secs: Vec<(u32, Vec<u8>)> = (0..n)
        .map(|i| {
            let e = format::HEADER_LEN + i * format::SECTION_ENTRY_LEN;
            let (off, len) = (u64_at(file, e + 8) as usize, u64_at(file, e + 16) as usize);
            (u32_at(file, e), file[off..off + len].to_vec())
        })
        .collect();
    edit(&mut secs);
    let mut out = file[..format::HEADER_LEN].to_vec();
    out.resize(format::HEADER_LEN + n * format::SECTION_ENTRY_LEN, 0);
    for (i, (k, body)) in secs.iter().enumerate() {
        out.resize(out.len().next_multiple_of(format::ALIGN), 0);
        let e = format::HEADER_LEN + i * format::SECTION_ENTRY_LEN;
        let entry = [
            k.to_le_bytes().as_slice(),
            &format::crc32(body).to_le_bytes(),
            &(out.len() as u64).to_le_bytes(),
            &(body.len() as u64).to_le_bytes(),
        ]
        .concat();
        out[e..e + format::SECTION_ENTRY_LEN].copy_from_slice(&entry);
        out.extend_from_slice(body);
    }
    out[10..12].copy_from_slice(&minor.to_le_bytes());
    let len = out.len() as u64;
    out[16..24].copy_from_slice(&len.to_le_bytes());
    let crc = format::crc32(&out[format::HEADER_LEN..]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    if u16::from_le_bytes([out[10], out[11]]) >= format::HEADER_CRC_MINOR {
        let crc = format::crc32(&out[..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// `file` with constant `t` re-stored as `(encoding, payload)` for each change: payloads are
/// appended to DATA (16-byte aligned), the records point at them.
pub fn with_constants(file: &[u8], minor: u16, changes: &[(usize, u8, Vec<u8>)]) -> Vec<u8> {
    with_sections(file, minor, |secs| {
        let data = secs.iter().position(|s| s.0 == section::DATA).unwrap();
        let tensors = secs.iter().position(|s| s.0 == section::TENSORS).unwrap();
        for (t, enc, payload) in changes {
            let d = &mut secs[data].1;
            d.resize(d.len().next_multiple_of(format::ALIGN), 0);
            let off = d.len() as u32;
            d.extend_from_slice(payload);
            let r = &mut secs[tensors].1[t * format::TENSOR_RECORD_LEN..(t + 1) * format::TENSOR_RECORD_LEN];
            r[11] = *enc;
            r[36..40].copy_from_slice(&off.to_le_bytes());
            r[40..44].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        }
    })
}

/// `file` with the kernel code of operator `op` set to `kernel`.
pub fn with_kernel(file: &[u8], op: usize, kernel: u16) -> Vec<u8> {
    let minor = u16::from_le_bytes([file[10], file[11]]);
    with_sections(file, minor, |secs| {
        let ops = secs.iter().position(|s| s.0 == section::OPS).unwrap();
        let at = op * format::OP_RECORD_LEN + 2;
        secs[ops].1[at..at + 2].copy_from_slice(&kernel.to_le_bytes());
    })
}

/// The f32 values of constant `t`.
pub fn weights(model: &Model<'_>, t: usize) -> Vec<f32> {
    let v = model.constant(&model.tensor(t).unwrap());
    (0..v.len()).map(|i| v.get(i)).collect()
}

/// `bytes` copied to a 16-byte aligned address plus `shift`, in a buffer of `u128` (only
/// 8-aligned on 32-bit Arm, so the start is found in the buffer).
pub fn placed(bytes: &[u8], shift: usize) -> (Vec<u128>, std::ops::Range<usize>) {
    let mut b = vec![0u128; (bytes.len() + shift).div_ceil(16) + 1];
    let all: &mut [u8] = bytemuck::cast_slice_mut(&mut b);
    let at = all.as_ptr().align_offset(16) + shift;
    all[at..at + bytes.len()].copy_from_slice(bytes);
    (b, at..at + bytes.len())
}

pub fn parse(b: &(Vec<u128>, std::ops::Range<usize>)) -> Result<Model<'_>, Error> {
    Model::parse(&bytemuck::cast_slice::<u128, u8>(&b.0)[b.1.clone()])
}

/// Runs `model` on a fixed input with the kernel set `OPS`; the first output.
pub fn run<const OPS: u128>(model: &Model<'_>) -> Result<Vec<f32>, Error> {
    let mut arena = vec![0u32; model.arena_len().div_ceil(4)];
    let mut s = Session::new(model, bytemuck::cast_slice_mut(&mut arena))?;
    s.input_mut(0)?.iter_mut().enumerate().for_each(|(i, v)| *v = ((i * 5) % 11) as f32 / 11.0);
    s.run_with_in::<OPS>(|_, _| {})?;
    Ok(s.output(0)?.to_vec())
}
