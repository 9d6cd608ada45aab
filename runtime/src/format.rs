//! Byte layout of `.sprig` v1 files (see `docs/FORMAT.md`). Shared by the reader here and the
//! writer in `sprig-tools`; every multi-byte field is little-endian.

/// File magic.
pub const MAGIC: [u8; 8] = *b"SPRIG\0\r\n";
/// Major version: bumped when a v1 reader could misread a file. Readers reject other majors.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version: bumped for additions a v1 reader detects and reports (new sections it may
/// ignore, new encodings / operator kinds / kernels it rejects by name).
pub const VERSION_MINOR: u16 = 5;
/// First minor version with binary function 8, Add+Relu (a 1.4 reader rejects it with
/// `BadAttribute`).
pub const ADD_RELU_MINOR: u16 = 5;
/// First minor version whose header carries its own CRC-32 (bytes 28..32, over bytes 0..28), so
/// that with the payload CRC every byte of the file is covered. Earlier files hold 0 there.
pub const HEADER_CRC_MINOR: u16 = 4;

/// Header size in bytes: magic, major, minor, section count, file length, payload CRC-32, header
/// CRC-32 (reserved and zero before 1.4).
pub const HEADER_LEN: usize = 32;
/// Section table entry size: kind u32, crc32 u32, offset u64, length u64.
pub const SECTION_ENTRY_LEN: usize = 24;
/// Most sections a file may declare.
pub const MAX_SECTIONS: usize = 64;
/// Alignment of sections, constant payloads and arena offsets.
pub const ALIGN: usize = 16;

/// Section kinds.
pub mod section {
    #![allow(missing_docs)]
    pub const META: u32 = 1;
    pub const STRINGS: u32 = 2;
    pub const TENSORS: u32 = 3;
    pub const OPS: u32 = 4;
    pub const OPERANDS: u32 = 5;
    pub const DATA: u32 = 6;
}

/// META section fixed part: producer (string ref), sha256 of the source model, arena length,
/// arena lower bound, input count, output count; followed by the input then output tensor ids.
pub const META_FIXED_LEN: usize = 56;

/// Tensor record size.
pub const TENSOR_RECORD_LEN: usize = 64;
/// Operator record size.
pub const OP_RECORD_LEN: usize = 128;
/// Byte offset of the attribute words in an operator record.
pub const OP_ATTRS_AT: usize = 24;

/// "No tensor" in the alias field.
pub const NO_TENSOR: u32 = u32::MAX;

/// Largest number of tensors a file may declare (bounds the quadratic overlap check).
pub const MAX_TENSORS: usize = 16384;
/// Largest number of operators.
pub const MAX_OPS: usize = 16384;

/// What a tensor is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Role {
    /// Intermediate value in the arena.
    Activation = 0,
    /// Graph input in the arena, written by the caller.
    Input = 1,
    /// Graph output in the arena.
    Output = 2,
    /// Constant stored in the DATA section.
    Constant = 3,
}

impl Role {
    /// Decodes a stored role byte.
    pub fn from_u8(b: u8) -> Option<Role> {
        Some(match b {
            0 => Role::Activation,
            1 => Role::Input,
            2 => Role::Output,
            3 => Role::Constant,
            _ => return None,
        })
    }

    /// True when the tensor lives in the arena.
    pub fn in_arena(self) -> bool {
        self != Role::Constant
    }
}

/// Element type codes. Only f32 exists in v1.
pub const DTYPE_F32: u8 = 1;

/// Weight payload encodings.
pub mod encoding {
    #![allow(missing_docs)]
    /// Arena tensors (no payload).
    pub const NONE: u8 = 0;
    /// Dense little-endian f32.
    pub const F32: u8 = 1;
    /// Dense little-endian IEEE binary16.
    pub const F16: u8 = 2;
    /// Block-sparse rows of f32 blocks over the `[d0, numel / d0]` matrix (minor 1; layout in
    /// [`crate::sparse`] and `docs/FORMAT.md`).
    pub const BSR_F32: u8 = 3;
    /// Packed `bits`-bit indices into per-group codebooks over the `[d0, numel / d0]` matrix
    /// (minor 2; layout in [`crate::codebook`] and `docs/FORMAT.md`).
    pub const CODEBOOK: u8 = 4;

    /// Human-readable name of an encoding code.
    pub fn name(code: u8) -> &'static str {
        match code {
            NONE => "none",
            F32 => "f32",
            F16 => "f16",
            BSR_F32 => "bsr-f32",
            CODEBOOK => "codebook",
            _ => "unknown",
        }
    }
}

/// Fixed header of a `BSR_F32` payload: `u16 br`, `u16 bc`, `u32 nnzb`, `u32 nbr`, `u32 ncb`.
pub const BSR_HEADER_LEN: usize = 16;
/// Most block columns a `BSR_F32` payload may have (block column indices are `u16`).
pub const BSR_MAX_BLOCK_COLS: usize = 65536;

#[cfg(feature = "std")]
pub use crate::sparse::encode_bsr;
pub use crate::sparse::{bsr_len, bsr_matrix};

/// Fixed header of a `CODEBOOK` payload: `u8 bits`, `u8 value_type`, `u16 reserved`,
/// `u32 groups`, `u32 rows`, `u32 cols`.
pub const CODEBOOK_HEADER_LEN: usize = 16;
/// Most codebooks (row groups) a `CODEBOOK` payload may have (row groups are `u16`).
pub const CODEBOOK_MAX_GROUPS: usize = 65536;
/// Widest index of a `CODEBOOK` payload, in bits (indices are 1 to 8 bits wide).
pub const CODEBOOK_MAX_BITS: u8 = 8;

/// Codebook value types of a `CODEBOOK` payload (its `value_type` header byte).
pub mod codebook_value {
    /// Little-endian f32.
    pub const F32: u8 = 0;
    /// Little-endian IEEE binary16.
    pub const F16: u8 = 1;
}

pub use crate::codebook::codebook_len;
#[cfg(feature = "std")]
pub use crate::codebook::encode_codebook;

/// Kernel codes (which implementation runs an operator).
pub mod kernel {
    #![allow(missing_docs)]
    /// The plain reference kernel.
    pub const REFERENCE: u16 = 0;
    /// Dense with a codebook weight (minor 2): per output row, the inputs are summed per
    /// codeword, then multiplied once by each codeword (`2^bits` products instead of one per
    /// weight). Only valid on a Dense whose weight is a `CODEBOOK` constant.
    pub const CODEBOOK_LUT: u16 = 1;
    /// Input-sparse Dense or 1×1 Conv (minor 3): the weight constant is stored input-major, its
    /// dims 0 and 1 swapped (Dense `[K, N]`, Conv `[C, M, 1, 1]`), and zero inputs are skipped.
    /// Only valid on a Dense, or a Conv with group 1, a 1×1 kernel and no padding, whose weight is
    /// an f32, f16 or codebook constant (a codebook's rows are then the inputs).
    pub const INPUT_SPARSE: u16 = 2;

    /// Human-readable name of a kernel code.
    pub fn name(code: u16) -> &'static str {
        match code {
            REFERENCE => "reference",
            CODEBOOK_LUT => "codebook-lut",
            INPUT_SPARSE => "input-sparse",
            _ => "unknown",
        }
    }
}

/// CRC-32 lookup tables: slice-by-16 (16 KiB) on hosts; one 1 KiB table without `std`, where
/// flash is scarce and the checksum runs once per parse.
#[cfg(feature = "std")]
type CrcTable = crc::Table<16>;
#[cfg(not(feature = "std"))]
type CrcTable = crc::Table<1>;
static CRC32: crc::Crc<u32, CrcTable> = crc::Crc::<u32, CrcTable>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (IEEE 802.3, as zlib and PNG) used for the payload and section checksums.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_is_the_ieee_check_value_and_every_table_size_agrees() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let small = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
        let mut x = 0x1234_5678u32;
        let data: std::vec::Vec<u8> = (0..4099)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in [0, 1, 3, 15, 16, 17, 255, 4099] {
            assert_eq!(crc32(&data[..n]), small.checksum(&data[..n]), "length {n}");
        }
    }
}
