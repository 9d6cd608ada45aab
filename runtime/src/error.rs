//! The runtime's error type: one variant per rule a file or a call can break.

use crate::op::OpError;

/// Why a model file was rejected or an inference call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The file is shorter than its header, section table or declared length.
    Truncated,
    /// The file does not start with the `.sprig` magic.
    BadMagic,
    /// The file's major version is not one this reader understands.
    UnsupportedVersion {
        /// Major version in the file.
        major: u16,
        /// Minor version in the file.
        minor: u16,
    },
    /// The header's file length differs from the number of bytes given.
    LengthMismatch {
        /// Length stated in the header.
        declared: u64,
        /// Bytes actually given.
        actual: u64,
    },
    /// The CRC-32 over the payload does not match (the file is corrupted).
    ChecksumMismatch,
    /// The header's own CRC-32 (format 1.4 and later) does not match (the header is corrupted).
    HeaderChecksumMismatch,
    /// A file older than 1.4 has non-zero reserved header bytes (corrupted, or a 1.4+ file whose
    /// minor version byte was damaged).
    NonZeroReserved,
    /// The section table declares more sections than allowed.
    TooManySections,
    /// A section's bytes do not match its CRC-32.
    SectionChecksumMismatch {
        /// Section kind.
        kind: u32,
    },
    /// A section lies outside the file or overlaps the header / section table.
    SectionOutOfBounds {
        /// Section kind.
        kind: u32,
    },
    /// A section does not start at a 16-byte boundary.
    SectionMisaligned {
        /// Section kind.
        kind: u32,
    },
    /// A compact section table (format 1.10) is malformed: entry `entry` is cut short or holds
    /// a value out of range (entry 0 also: the header declares fixed entries too), or, with
    /// `entry` equal to the number of sections, the sections end before the file does.
    BadSectionTable {
        /// Index of the entry.
        entry: u32,
    },
    /// The alignment bytes before a section (DATA, in a compact section table) are not zero.
    NonZeroPadding {
        /// Section kind.
        kind: u32,
    },
    /// The file's tensor or operator table is fixed-size (format 1.0 to 1.5) or packed (1.6 to
    /// 1.8), and this runtime was built without feature `legacy-tables` (only compact tables,
    /// format 1.9). Convert the model again, or enable the feature.
    LegacyTables {
        /// Section kind of the table.
        kind: u32,
    },
    /// A section kind appears twice.
    DuplicateSection {
        /// Section kind.
        kind: u32,
    },
    /// A required section is absent.
    MissingSection {
        /// Section kind.
        kind: u32,
    },
    /// A section's length does not fit its record layout.
    BadSectionLength {
        /// Section kind.
        kind: u32,
    },
    /// More tensors or operators than the reader accepts.
    TooManyRecords,
    /// A packed record (format 1.6) ends inside a value, has bytes after its last value, or holds
    /// a value that is not in shortest LEB128 form, above `u32::MAX` or out of its field's range.
    BadRecord {
        /// Section kind.
        kind: u32,
        /// Record index (tensor or operator).
        index: u32,
    },
    /// A string reference is out of bounds or not UTF-8.
    BadString,
    /// A tensor record has an unknown role, element type or rank, or an impossible shape.
    BadTensor {
        /// Tensor index.
        tensor: u32,
    },
    /// A constant uses a weight encoding this reader does not know.
    UnsupportedEncoding {
        /// Tensor index.
        tensor: u32,
        /// Encoding code.
        encoding: u8,
    },
    /// A constant's payload lies outside the DATA section.
    DataOutOfBounds {
        /// Tensor index.
        tensor: u32,
    },
    /// A constant's payload is not 16-byte aligned.
    DataMisaligned {
        /// Tensor index.
        tensor: u32,
    },
    /// A tensor's byte length does not match its shape and encoding.
    BadDataLength {
        /// Tensor index.
        tensor: u32,
    },
    /// A block-sparse (`BSR_F32`) constant breaks a rule of its payload layout.
    BadSparse {
        /// Tensor index.
        tensor: u32,
        /// The rule broken, e.g. `"row_ptr decreases"`.
        rule: &'static str,
    },
    /// A codebook (`CODEBOOK`) constant breaks a rule of its payload layout.
    BadCodebook {
        /// Tensor index.
        tensor: u32,
        /// The rule broken, e.g. `"row_group entry not below groups"`.
        rule: &'static str,
    },
    /// A `U8_AFFINE` constant's grid is not finite: `lo` or `step` is NaN or infinite, `step` is
    /// negative, or its largest value `lo + 255 · step` overflows.
    BadAffine {
        /// Tensor index.
        tensor: u32,
    },
    /// An arena tensor lies outside the arena.
    ArenaOutOfBounds {
        /// Tensor index.
        tensor: u32,
    },
    /// An arena tensor's offset is not 16-byte aligned.
    ArenaMisaligned {
        /// Tensor index.
        tensor: u32,
    },
    /// Two arena buffers live at the same time overlap.
    ArenaOverlap {
        /// First tensor index.
        a: u32,
        /// Second tensor index.
        b: u32,
    },
    /// A tensor's recorded lifetime does not cover its producer and every use.
    BadLifetime {
        /// Tensor index.
        tensor: u32,
    },
    /// A tensor's alias does not name an unaliased arena tensor with the same range.
    BadAlias {
        /// Tensor index.
        tensor: u32,
    },
    /// The model has no operator.
    NoOperators,
    /// The input / output lists are inconsistent with the tensor roles.
    BadIo,
    /// An operator kind this reader does not know.
    UnsupportedOp {
        /// Operator index.
        op: u32,
        /// Kind code.
        kind: u16,
    },
    /// An operator asks for a kernel this reader does not have.
    UnsupportedKernel {
        /// Operator index.
        op: u32,
        /// Kernel code.
        kernel: u16,
    },
    /// An operator asks for a kernel that does not apply to it (`CODEBOOK_LUT` on anything but a
    /// Dense whose weight is a codebook constant; `INPUT_SPARSE` on anything but a Dense or 1×1
    /// Conv with a plain weight whose input-major shape fits).
    KernelNotApplicable {
        /// Operator index.
        op: u32,
        /// Kernel code.
        kernel: u16,
    },
    /// An operator attribute is out of its domain.
    BadAttribute {
        /// Operator index.
        op: u32,
    },
    /// An operator has the wrong number of operands.
    BadArity {
        /// Operator index.
        op: u32,
    },
    /// An operand id is out of range, reads a value not yet computed, or writes a non-arena tensor.
    BadOperand {
        /// Operator index.
        op: u32,
    },
    /// Operand shapes are inconsistent with the operator.
    ShapeMismatch {
        /// Operator index.
        op: u32,
    },
    /// An operator's output buffer overlaps one of its inputs.
    OperandOverlap {
        /// Operator index.
        op: u32,
    },
    /// The arena given to a session is smaller than the model needs.
    ArenaTooSmall {
        /// Bytes needed.
        needed: u32,
        /// Bytes given.
        got: u32,
    },
    /// The arena given to a session is not 4-byte aligned.
    ArenaNotAligned,
    /// [`crate::Plan::new`] was given fewer steps than the model has operators.
    StepsTooFew {
        /// Operators in the model.
        needed: u32,
        /// Steps given.
        got: u32,
    },
    /// [`crate::Session::with_plan`] was given a plan made for another model.
    PlanMismatch,
    /// No input / output with that index.
    NoSuchTensor {
        /// The index asked for.
        index: u32,
    },
}

impl Error {
    pub(crate) fn from_op(op: u32, e: OpError) -> Error {
        match e {
            OpError::UnknownKind(kind) => Error::UnsupportedOp { op, kind },
            OpError::BadAttribute => Error::BadAttribute { op },
            OpError::BadArity => Error::BadArity { op },
            OpError::ShapeMismatch => Error::ShapeMismatch { op },
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use Error::*;
        match *self {
            Truncated => write!(f, "file is truncated"),
            BadMagic => write!(f, "not a .sprig file (bad magic)"),
            UnsupportedVersion { major, minor } => write!(f, "unsupported .sprig version {major}.{minor} (this reader reads 1.x)"),
            LengthMismatch { declared, actual } => write!(f, "header says {declared} bytes but {actual} were given"),
            ChecksumMismatch => write!(f, "payload checksum mismatch: the file is corrupted"),
            HeaderChecksumMismatch => write!(f, "header checksum mismatch: the header is corrupted"),
            NonZeroReserved => write!(f, "reserved header bytes are not zero in a pre-1.4 file: the header is corrupted"),
            TooManySections => write!(f, "too many sections"),
            SectionChecksumMismatch { kind } => write!(f, "section {kind}: checksum mismatch"),
            SectionOutOfBounds { kind } => write!(f, "section {kind}: out of bounds"),
            SectionMisaligned { kind } => write!(f, "section {kind}: not 16-byte aligned"),
            BadSectionTable { entry } => {
                write!(f, "section table entry {entry}: cut short, a value out of range, or sections that do not end with the file")
            }
            NonZeroPadding { kind } => write!(f, "section {kind}: the alignment bytes before it are not zero"),
            DuplicateSection { kind } => write!(f, "section {kind}: appears twice"),
            LegacyTables { kind } => {
                write!(f, "section {kind}: tables of format 1.0 to 1.8, which this runtime reads only with feature `legacy-tables`")
            }
            MissingSection { kind } => write!(f, "section {kind}: missing"),
            BadSectionLength { kind } => write!(f, "section {kind}: length does not fit its records"),
            TooManyRecords => write!(f, "too many tensors or operators"),
            BadRecord { kind, index } => write!(f, "section {kind}, record {index}: truncated, trailing bytes, or a value out of range"),
            BadString => write!(f, "string reference out of bounds or not UTF-8"),
            BadTensor { tensor } => write!(f, "tensor {tensor}: bad role, element type, rank or shape"),
            UnsupportedEncoding { tensor, encoding } => write!(f, "tensor {tensor}: unsupported weight encoding {encoding}"),
            DataOutOfBounds { tensor } => write!(f, "tensor {tensor}: payload outside the data section"),
            DataMisaligned { tensor } => write!(f, "tensor {tensor}: payload not 16-byte aligned"),
            BadDataLength { tensor } => write!(f, "tensor {tensor}: byte length does not match shape and encoding"),
            BadSparse { tensor, rule } => write!(f, "tensor {tensor}: bad block-sparse payload: {rule}"),
            BadCodebook { tensor, rule } => write!(f, "tensor {tensor}: bad codebook payload: {rule}"),
            BadAffine { tensor } => {
                write!(f, "tensor {tensor}: u8-affine grid (lo, step) not finite, step negative, or lo + 255 step overflows")
            }
            ArenaOutOfBounds { tensor } => write!(f, "tensor {tensor}: outside the arena"),
            ArenaMisaligned { tensor } => write!(f, "tensor {tensor}: arena offset not 16-byte aligned"),
            ArenaOverlap { a, b } => write!(f, "tensors {a} and {b} overlap in the arena while both live"),
            BadLifetime { tensor } => write!(f, "tensor {tensor}: lifetime does not cover its producer and uses"),
            BadAlias { tensor } => write!(f, "tensor {tensor}: invalid alias"),
            NoOperators => write!(f, "model has no operator"),
            BadIo => write!(f, "input/output lists inconsistent with tensor roles"),
            UnsupportedOp { op, kind } => write!(f, "operator {op}: unsupported kind {kind}"),
            UnsupportedKernel { op, kernel } => write!(f, "operator {op}: unsupported kernel {kernel}"),
            KernelNotApplicable { op, kernel } => write!(
                f,
                "operator {op}: kernel {kernel} ({}) does not apply: it needs {}",
                crate::format::kernel::name(kernel),
                if kernel == crate::format::kernel::INPUT_SPARSE {
                    "a Dense, or a 1x1 Conv with group 1 and no padding, whose weight is an f32, f16 or codebook constant stored input-major"
                } else {
                    "a Dense whose weight is a codebook constant"
                }
            ),
            BadAttribute { op } => write!(f, "operator {op}: attribute out of domain"),
            BadArity { op } => write!(f, "operator {op}: wrong number of operands"),
            BadOperand { op } => write!(f, "operator {op}: bad operand"),
            ShapeMismatch { op } => write!(f, "operator {op}: operand shapes inconsistent"),
            OperandOverlap { op } => write!(f, "operator {op}: output overlaps an input"),
            ArenaTooSmall { needed, got } => write!(f, "arena too small: need {needed} bytes, got {got}"),
            ArenaNotAligned => write!(f, "arena not 4-byte aligned"),
            StepsTooFew { needed, got } => write!(f, "too few plan steps: need {needed} (one per operator), got {got}"),
            PlanMismatch => write!(f, "the session plan was made for another model"),
            NoSuchTensor { index } => write!(f, "no input/output with index {index}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
