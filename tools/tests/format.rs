//! `.sprig` reader: round trip through the writer, and one negative test per error variant.

mod common;

use sprig_runtime::format::{self, section};
use sprig_runtime::{Activation, BinaryKind, ConvAttrs, Error, Model, Op, Session, Shape, UnaryKind};
use sprig_tools::compile::compile;
use sprig_tools::ir::{Graph, Node};
use sprig_tools::writer::{assemble, compact_tables, pack_tables, unpack_tables, WeightFormat};

/// x[1,2,4,4] → Conv3x3(pad 1, 3 filters)+Relu = a;  x → Sigmoid = b (same shape as x);
/// GlobalAveragePool(a) = p [1,3,1,1]; Reshape p → [1,3] = r; Dense(r) = d [1,2];
/// Add(b, b) = e; ReduceMean(e) = f [1,2] ... kept simple: output d and e.
fn sample_graph() -> Graph {
    let mut g = Graph::default();
    let x = g.add_tensor("x", vec![1, 2, 4, 4], None);
    let w = g.add_tensor("w", vec![3, 2, 3, 3], Some((0..54).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect()));
    let bias = g.add_tensor("bias", vec![3], Some(vec![0.1, -0.2, 0.3]));
    let a = g.add_tensor("a", vec![1, 3, 4, 4], None);
    let b = g.add_tensor("b", vec![1, 2, 4, 4], None);
    let p = g.add_tensor("p", vec![1, 3, 1, 1], None);
    let r = g.add_tensor("r", vec![1, 3], None);
    let dw = g.add_tensor("dw", vec![2, 3], Some(vec![1.0, -1.0, 0.5, 0.25, 2.0, -0.5]));
    let d = g.add_tensor("d", vec![1, 2], None);
    let e = g.add_tensor("e", vec![1, 2, 4, 4], None);
    g.inputs = vec![x];
    let conv = ConvAttrs { group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], act: Activation::Relu };
    let mut node = |name: &str, op: Op, inputs: Vec<usize>, out: usize| {
        g.nodes.push(Node { name: name.into(), onnx_op: name.into(), op, inputs, outputs: vec![out] });
    };
    node("conv", Op::Conv(conv), vec![x, w, bias], a);
    node("sig", Op::Unary(UnaryKind::Sigmoid), vec![x], b);
    node("gap", Op::GlobalAveragePool, vec![a], p);
    node("flat", Op::Reshape { shape: Shape::new(&[1, 3]).unwrap() }, vec![p], r);
    node("fc", Op::Dense { act: Activation::None }, vec![r, dw], d);
    // Add+Relu: the newest operator, so the file declares the newest minor version.
    node("add", Op::Binary(BinaryKind::AddRelu), vec![b, b], e);
    g.outputs = vec![d, e];
    g
}

/// The writer's file: compact tables (format 1.9) and section table (1.10).
fn compact_file() -> Vec<u8> {
    compile(sample_graph(), WeightFormat::F32, [7; 32]).unwrap().bytes
}

/// The same file with fixed-size tables (format 1.5), whose records the tests below edit at
/// their documented byte offsets.
fn good_file() -> Vec<u8> {
    unpack_tables(&compact_file()).unwrap()
}

/// The same model with packed tables (format 1.6), packed from the fixed ones.
fn packed_file() -> Vec<u8> {
    let fs = sections(&good_file());
    let (t, o, ids) = pack_tables(&fs[2].1, &fs[3].1, &fs[4].1).unwrap();
    let secs =
        [fs[0].clone(), fs[1].clone(), (section::TENSORS_PACKED, t), (section::OPS_PACKED, o), (section::OPERANDS16, ids), fs[5].clone()];
    rebuild_at(&secs, format::PACKED_MINOR)
}

fn sections(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    sprig_tools::writer::sections_of(bytes, u16::from_le_bytes([bytes[10], bytes[11]])).unwrap()
}

fn rebuild(secs: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(u32, &[u8])> = secs.iter().map(|(k, b)| (*k, b.as_slice())).collect();
    assemble(&refs, 0)
}

/// Applies `f` to the body of section `kind` and rebuilds a file with valid checksums.
fn edit(kind: u32, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut secs = sections(&good_file());
    let s = secs.iter_mut().find(|s| s.0 == kind).unwrap();
    f(&mut s.1);
    rebuild(&secs)
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn tensor_at(name: &str) -> usize {
    let g = sample_graph();
    g.tensors.iter().position(|t| t.name == name).unwrap() * format::TENSOR_RECORD_LEN
}

fn op_at(i: usize) -> usize {
    i * format::OP_RECORD_LEN
}

fn refix_crc(b: &mut [u8]) {
    let crc = format::crc32(&b[format::HEADER_LEN..]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    if u16::from_le_bytes([b[10], b[11]]) >= format::HEADER_CRC_MINOR {
        let crc = format::crc32(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
    }
}

fn err(bytes: &[u8]) -> Error {
    Model::parse(bytes).expect_err("the file should be rejected")
}

#[test]
fn round_trip_runs_and_matches_hand_computation() {
    let bytes = good_file();
    let m = Model::parse(&bytes).unwrap();
    assert_eq!(m.num_ops(), 6);
    assert_eq!(m.source_sha256(), [7; 32]);
    assert!(m.producer().starts_with("sprig-tools"));
    assert_eq!(m.input(0).unwrap().name, "x");
    assert_eq!(m.outputs().map(|o| o.name).collect::<Vec<_>>(), ["d", "e"]);
    assert!(m.arena_len() >= m.arena_lower_bound());
    let mut arena = vec![0u32; m.arena_len() / 4];
    let mut s = Session::new(&m, bytemuck::cast_slice_mut(&mut arena)).unwrap();
    let x: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 8.0).collect();
    s.input_mut(0).unwrap().copy_from_slice(&x);
    s.run().unwrap();
    let e = s.output(1).unwrap();
    for (i, v) in e.iter().enumerate() {
        let want = 2.0 / (1.0 + (-x[i]).exp());
        assert!((v - want).abs() < 1e-6);
    }
    // The Reshape is planned in place: p and r share one buffer.
    let t = |n: &str| (0..m.num_tensors()).map(|i| m.tensor(i).unwrap()).find(|t| t.name == n).unwrap();
    assert_eq!(t("p").offset, t("r").offset);
    assert_eq!(s.output(0).unwrap().len(), 2);
}

#[test]
fn f16_weights_round_trip_close_to_f32() {
    let b32 = compile(sample_graph(), WeightFormat::F32, [0; 32]).unwrap().bytes;
    let b16 = compile(sample_graph(), WeightFormat::F16, [0; 32]).unwrap().bytes;
    assert!(b16.len() < b32.len());
    let run = |bytes: &[u8]| {
        let m = Model::parse(bytes).unwrap();
        let mut arena = vec![0u32; m.arena_len() / 4];
        let mut s = Session::new(&m, bytemuck::cast_slice_mut(&mut arena)).unwrap();
        s.input_mut(0).unwrap().iter_mut().enumerate().for_each(|(i, v)| *v = (i as f32).sin());
        s.run().unwrap();
        s.output(0).unwrap().to_vec()
    };
    for (a, b) in run(&b32).iter().zip(run(&b16)) {
        assert!((a - b).abs() < 1e-2, "{a} vs {b}");
    }
}

/// Every byte of a file is covered: each single-byte corruption (every position, every other
/// value) is rejected, by the rule that guards that byte.
#[test]
fn every_single_byte_corruption_is_rejected_by_the_rule_guarding_it() {
    for bytes in [packed_file(), good_file()] {
        every_single_byte_corruption_is_rejected(&bytes);
    }
}

fn every_single_byte_corruption_is_rejected(bytes: &[u8]) {
    let minor = u16::from_le_bytes([bytes[10], bytes[11]]);
    let mut b = bytes.to_vec();
    let mut rejected = 0usize;
    for i in 0..bytes.len() {
        for d in 1..=255u8 {
            b[i] = bytes[i] ^ d;
            let e = Model::parse(&b).expect_err("a corrupted byte was accepted");
            let want = match i {
                0..8 => Error::BadMagic,
                8..10 => Error::UnsupportedVersion { major: u16::from_le_bytes([b[8], b[9]]), minor },
                10..12 if u16::from_le_bytes([b[10], b[11]]) < format::HEADER_CRC_MINOR => Error::NonZeroReserved,
                10..32 => Error::HeaderChecksumMismatch,
                _ => Error::ChecksumMismatch,
            };
            assert_eq!(e, want, "byte {i} xor {d:#04x}");
            assert!(!e.to_string().is_empty());
            rejected += 1;
        }
        b[i] = bytes[i];
    }
    assert_eq!(rejected, bytes.len() * 255);
}

/// Every truncation and every extension is rejected as such.
#[test]
fn every_truncation_and_extension_is_rejected() {
    for bytes in [packed_file(), good_file()] {
        let bytes = &bytes;
        for n in 0..bytes.len() {
            assert_eq!(Model::parse(&bytes[..n]).err(), Some(Error::Truncated), "prefix of {n} bytes");
        }
        for extra in [1usize, 3, 16, 4096] {
            let mut b = bytes.clone();
            b.resize(bytes.len() + extra, 0);
            let want = Error::LengthMismatch { declared: bytes.len() as u64, actual: b.len() as u64 };
            assert_eq!(Model::parse(&b).err(), Some(want), "{extra} bytes appended");
        }
    }
}

/// Every tensor and operator of `a` equals that of `b`, operand ids included.
fn assert_same_records(a: &Model<'_>, b: &Model<'_>) {
    assert_eq!((a.num_tensors(), a.num_ops()), (b.num_tensors(), b.num_ops()));
    for i in 0..a.num_tensors() {
        assert_eq!(a.tensor(i), b.tensor(i), "tensor {i}");
    }
    for i in 0..a.num_ops() {
        let (oa, ob) = (a.op(i).unwrap(), b.op(i).unwrap());
        assert_eq!(oa, ob, "op {i}");
        for k in 0..=oa.n_inputs {
            assert_eq!(a.op_operand(&oa, k), b.op_operand(&ob, k), "op {i} operand {k}");
        }
    }
    assert_eq!(a.inputs().collect::<Vec<_>>(), b.inputs().collect::<Vec<_>>());
    assert_eq!(a.outputs().collect::<Vec<_>>(), b.outputs().collect::<Vec<_>>());
}

#[test]
fn packed_and_fixed_tables_hold_the_same_model() {
    let packed = packed_file();
    let fixed = good_file();
    let (p, f) = (Model::parse(&packed).unwrap(), Model::parse(&fixed).unwrap());
    assert_eq!((p.minor_version(), f.minor_version()), (format::PACKED_MINOR, format::PACKED_MINOR - 1));
    let kinds = |b: &[u8]| sections(b).iter().map(|s| s.0).collect::<Vec<_>>();
    assert_eq!(kinds(&packed), [1, 2, section::TENSORS_PACKED, section::OPS_PACKED, section::OPERANDS16, 6]);
    assert_eq!(kinds(&fixed), [1, 2, 3, 4, 5, 6]);
    assert!(packed.len() < fixed.len(), "{} vs {}", packed.len(), fixed.len());
    assert_same_records(&p, &f);
    assert_eq!(unpack_tables(&packed).unwrap(), fixed, "unpacking gives the fixed tables");
    assert_eq!(unpack_tables(&fixed).unwrap(), fixed, "fixed tables come back unchanged");
    assert_eq!(run_sample(&p), run_sample(&f));
}

/// The sample model's outputs, as bits, on a fixed input.
fn run_sample(m: &Model<'_>) -> Vec<Vec<u32>> {
    let mut arena = vec![0u32; m.arena_len() / 4];
    let mut s = Session::new(m, bytemuck::cast_slice_mut(&mut arena)).unwrap();
    s.input_mut(0).unwrap().iter_mut().enumerate().for_each(|(i, v)| *v = (i as f32 * 0.37).sin());
    s.run().unwrap();
    (0..2).map(|k| s.output(k).unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>()
}

#[test]
fn compact_and_fixed_tables_hold_the_same_model() {
    let compact = compact_file();
    let fixed = good_file();
    let (c, f) = (Model::parse(&compact).unwrap(), Model::parse(&fixed).unwrap());
    assert_eq!(c.minor_version(), format::SECTION_TABLE_MINOR);
    let kinds = |b: &[u8]| sections(b).iter().map(|s| s.0).collect::<Vec<_>>();
    assert_eq!(kinds(&compact), [1, 2, section::TENSORS_COMPACT, section::OPS_COMPACT, 6]);
    assert!(compact.len() < packed_file().len(), "{} vs {}", compact.len(), packed_file().len());
    common::assert_same_model(&c, &f);
    assert_eq!(run_sample(&c), run_sample(&f));
    // Compacting the fixed tables again holds the same records (at the fixed file's offsets).
    let fs = sections(&fixed);
    let (t, o) = compact_tables(&fs[2].1, &fs[3].1, &fs[4].1).unwrap();
    let again = rebuild_at(
        &[fs[0].clone(), fs[1].clone(), (section::TENSORS_COMPACT, t), (section::OPS_COMPACT, o), fs[5].clone()],
        format::COMPACT_MINOR,
    );
    common::assert_same_model(&Model::parse(&again).unwrap(), &f);
    // Only DATA is aligned, and nothing follows it (1.9's fixed section table and 1.10's).
    for file in [rebuild_at(&sections(&compact), format::COMPACT_MINOR), compact.clone()] {
        let minor = u16::from_le_bytes([file[10], file[11]]);
        let table = format::SectionTable::read(&file, minor).unwrap();
        let entries: Vec<format::Section> = table.iter().collect();
        assert!(entries.iter().any(|e| e.offset % 16 != 0), "some section starts off 16 bytes");
        let last = entries.last().unwrap();
        assert_eq!((last.kind, last.offset % 16), (section::DATA, 0));
        assert_eq!(last.offset + last.len, file.len() as u64);
    }
}

#[test]
fn compact_section_table_layout() {
    // 1.10: no fixed entries, then the count and each kind and length as LEB128, the sections
    // end to end after it (DATA on 16 bytes), no section CRCs.
    let file = compact_file();
    assert_eq!(u32::from_le_bytes(file[12..16].try_into().unwrap()), 0);
    let secs = sections(&file);
    let mut want = vec![secs.len() as u8];
    for (k, b) in &secs {
        want.push(*k as u8);
        let mut v = b.len() as u32;
        while v >= 0x80 {
            want.push((v as u8) | 0x80);
            v >>= 7;
        }
        want.push(v as u8);
    }
    assert_eq!(file[format::HEADER_LEN..format::HEADER_LEN + want.len()], want[..]);
    let mut at = format::HEADER_LEN + want.len();
    for (k, b) in &secs {
        if *k == section::DATA {
            assert!(file[at..at.next_multiple_of(16)].iter().all(|&x| x == 0));
            at = at.next_multiple_of(16);
        }
        assert_eq!(&file[at..at + b.len()], &b[..], "section {k}");
        at += b.len();
    }
    assert_eq!(at, file.len());
    // The same sections with the fixed table of 1.9: 24 bytes an entry, plus alignment.
    let old = rebuild_at(&secs, format::COMPACT_MINOR);
    assert_eq!(Model::parse(&old).unwrap().minor_version(), format::COMPACT_MINOR);
    let saved = old.len() as i64 - file.len() as i64;
    let table = (secs.len() * format::SECTION_ENTRY_LEN) as i64 - want.len() as i64;
    assert!((table - 15..=table + 15).contains(&saved), "saved {saved}, table {table}");
    common::assert_same_model(&Model::parse(&file).unwrap(), &Model::parse(&old).unwrap());
}

/// A 1.10 file of `table` (the compact section table's bytes) and then `rest`, with its length
/// and checksums filled in.
fn raw_1_10(table: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; format::HEADER_LEN];
    b[..8].copy_from_slice(&format::MAGIC);
    b[8..10].copy_from_slice(&format::VERSION_MAJOR.to_le_bytes());
    b[10..12].copy_from_slice(&format::SECTION_TABLE_MINOR.to_le_bytes());
    b.extend_from_slice(table);
    b.extend_from_slice(rest);
    let len = b.len() as u64;
    b[16..24].copy_from_slice(&len.to_le_bytes());
    refix_crc(&mut b);
    b
}

#[test]
fn bad_compact_section_table() {
    let file = compact_file();
    let secs = sections(&file);
    let body: Vec<u8> = file[format::HEADER_LEN..].to_vec();
    let t = format::SectionTable::read(&file, format::SECTION_TABLE_MINOR).unwrap();
    let (table, rest) = body.split_at(t.end() - format::HEADER_LEN);
    assert_eq!(raw_1_10(table, rest), file);
    // A fixed count beside the compact table.
    let mut b = file.clone();
    b[12] = 1;
    refix_crc(&mut b);
    assert_eq!(err(&b), Error::BadSectionTable { entry: 0 });
    // Too many sections; a count and no entries; an entry cut short by the end of the file.
    assert_eq!(err(&raw_1_10(&[65], &[])), Error::TooManySections);
    assert_eq!(err(&raw_1_10(&[1], &[])), Error::BadSectionTable { entry: 0 });
    assert_eq!(err(&raw_1_10(&[2, 1, 0], &[])), Error::BadSectionTable { entry: 1 });
    // A value not in its shortest form, or above u32::MAX.
    assert_eq!(err(&raw_1_10(&[1, 1, 0x80, 0x00], &[])), Error::BadSectionTable { entry: 0 });
    assert_eq!(err(&raw_1_10(&[1, 1, 0xff, 0xff, 0xff, 0xff, 0x7f], &[])), Error::BadSectionTable { entry: 0 });
    // Sections that end before the file does, or run past it.
    let mut more = rest.to_vec();
    more.push(0);
    assert_eq!(err(&raw_1_10(table, &more)), Error::BadSectionTable { entry: secs.len() as u32 });
    assert_eq!(err(&raw_1_10(table, &rest[..rest.len() - 1])), Error::SectionOutOfBounds { kind: section::DATA });
    assert_eq!(err(&raw_1_10(&[1, 1, 9], &[0; 8])), Error::SectionOutOfBounds { kind: 1 });
    // Non-zero alignment bytes before DATA (the sample's has some).
    let data_at = (t.iter().last().unwrap().offset as usize) - format::HEADER_LEN - table.len();
    assert!(data_at > 0, "the sample file has alignment bytes before DATA");
    let mut padded = rest.to_vec();
    padded[data_at - 1] = 1;
    assert_eq!(err(&raw_1_10(table, &padded)), Error::NonZeroPadding { kind: section::DATA });
    // A 1.9 reader finds no sections in a 1.10 file (as this one does when its minor says 9).
    let mut b = file.clone();
    b[10..12].copy_from_slice(&format::COMPACT_MINOR.to_le_bytes());
    refix_crc(&mut b);
    assert_eq!(err(&b), Error::MissingSection { kind: section::META });
    // Every prefix and every single-byte change of the table is an error, never a panic.
    for n in 0..file.len() {
        let mut b = file[..n].to_vec();
        if b.len() >= 24 {
            let len = n as u64;
            b[16..24].copy_from_slice(&len.to_le_bytes());
            if b.len() >= format::HEADER_LEN {
                refix_crc(&mut b);
            }
        }
        assert!(Model::parse(&b).is_err(), "prefix of {n} bytes");
    }
    for i in 0..table.len() {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut tb = table.to_vec();
            if tb[i] == v {
                continue;
            }
            tb[i] = v;
            if let Ok(m) = Model::parse(&raw_1_10(&tb, rest)) {
                // Only a change that still describes the same sections could parse.
                panic!("table byte {i} = {v} accepted: {} ops", m.num_ops());
            }
        }
    }
}

#[test]
fn compact_tables_need_format_1_9_and_exclude_the_other_forms() {
    let secs = sections(&compact_file());
    // A 1.8 reader skips kinds 10 and 11, and so does this reader in a file declaring 1.8.
    assert_eq!(err(&rebuild_at(&secs, format::COMPACT_MINOR - 1)), Error::MissingSection { kind: section::TENSORS });
    let fixed = sections(&good_file());
    let packed = sections(&packed_file());
    for (extra, named) in [
        (fixed[2].clone(), section::TENSORS_COMPACT),
        (packed[2].clone(), section::TENSORS_COMPACT),
        (fixed[3].clone(), section::OPS_COMPACT),
        (fixed[4].clone(), section::OPERANDS),
        (packed[4].clone(), section::OPERANDS16),
    ] {
        let mut more = secs.clone();
        more.push(extra);
        assert_eq!(err(&rebuild_at(&more, format::COMPACT_MINOR)), Error::DuplicateSection { kind: named });
    }
}

#[test]
fn compact_files_align_data_only() {
    // A 1.9 file whose DATA starts 4 bytes off 16 is rejected; its other sections may start
    // anywhere (the writer's do).
    let mut b = rebuild_at(&sections(&compact_file()), format::COMPACT_MINOR);
    let n = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let kinds: Vec<u32> = sections(&b).iter().map(|s| s.0).collect();
    let d = kinds.iter().position(|&k| k == section::DATA).unwrap();
    assert_eq!(d, n - 1);
    let e = format::HEADER_LEN + d * format::SECTION_ENTRY_LEN;
    let off = u64::from_le_bytes(b[e + 8..e + 16].try_into().unwrap()) as usize;
    let body = b[off..].to_vec();
    b.truncate(off);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&body);
    b[e + 8..e + 16].copy_from_slice(&(off as u64 + 4).to_le_bytes());
    let len = b.len() as u64;
    b[16..24].copy_from_slice(&len.to_le_bytes());
    refix_crc(&mut b);
    assert_eq!(err(&b), Error::SectionMisaligned { kind: section::DATA });
}

/// `compact_file()` with the records of compact section `kind` passed through `f`.
fn edit_compact(kind: u32, f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    edit_records(&compact_file(), format::COMPACT_MINOR, kind, f)
}

/// `file` with the records of its packed or compact section `kind` passed through `f`, rebuilt
/// with 2-byte starts as a file declaring 1.`minor`.
fn edit_records(file: &[u8], minor: u16, kind: u32, f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let mut secs = sections(file);
    let s = secs.iter_mut().find(|s| s.0 == kind).unwrap();
    let mut r = records(&s.1);
    f(&mut r);
    s.1 = table(&r, 2);
    rebuild_at(&secs, minor)
}

#[test]
fn bad_compact_record() {
    let (tc, oc) = (section::TENSORS_COMPACT, section::OPS_COMPACT);
    let file = compact_file();
    let c = Model::parse(&file).unwrap();
    let constant = (0..c.num_tensors()).find(|&i| c.tensor(i).unwrap().role == format::Role::Constant).unwrap();
    let activation = (0..c.num_tensors()).find(|&i| c.tensor(i).unwrap().role == format::Role::Activation).unwrap();
    type Edit = Box<dyn Fn(&mut Vec<u32>)>;
    let cases: Vec<(u32, usize, Edit, Error)> = vec![
        // A constant with a lifetime and alias, as packed records have.
        (tc, constant, Box::new(|v: &mut Vec<u32>| v.extend([0, 0, 0])), Error::BadRecord { kind: tc, index: constant as u32 }),
        // An activation without them.
        (tc, activation, Box::new(|v: &mut Vec<u32>| v.truncate(v.len() - 3)), Error::BadRecord { kind: tc, index: activation as u32 }),
        // One attribute word more than the record declares.
        (oc, 0, Box::new(|v: &mut Vec<u32>| v.push(1)), Error::BadRecord { kind: oc, index: 0 }),
        // More inputs than any operator takes.
        (oc, 0, Box::new(|v: &mut Vec<u32>| v[2] = 17), Error::BadArity { op: 0 }),
        // An operand id past the tensors.
        (oc, 0, Box::new(|v: &mut Vec<u32>| v[4] = 1000), Error::BadOperand { op: 0 }),
        // A payload past DATA.
        (
            tc,
            constant,
            Box::new(|v: &mut Vec<u32>| {
                let at = 5 + v[4] as usize;
                v[at] = 1 << 20;
            }),
            Error::DataOutOfBounds { tensor: constant as u32 },
        ),
    ];
    for (kind, index, f, want) in cases {
        let b = edit_compact(kind, |r| {
            let mut v = values(&r[index]);
            f(&mut v);
            r[index] = leb(&v);
        });
        assert_eq!(err(&b), want, "section {kind} record {index}");
    }
}

/// The records of a packed table, and a table rebuilt from records with starts of `width` bytes.
fn records(body: &[u8]) -> Vec<Vec<u8>> {
    let t = format::packed::Table::parse(body, usize::MAX).unwrap();
    (0..t.len()).map(|i| t.record(i).unwrap().to_vec()).collect()
}

fn table(records: &[Vec<u8>], width: u8) -> Vec<u8> {
    let mut out = (records.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&[width, 0, 0, 0]);
    let mut at = 0u32;
    for r in records {
        out.extend_from_slice(&at.to_le_bytes()[..width as usize]);
        at += r.len() as u32;
    }
    records.iter().for_each(|r| out.extend_from_slice(r));
    out
}

fn leb(values: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        let mut b = [0u8; 5];
        let n = format::packed::encode(v, &mut b);
        out.extend_from_slice(&b[..n]);
    }
    out
}

fn values(record: &[u8]) -> Vec<u32> {
    let mut v = format::packed::Values::new(record);
    std::iter::from_fn(|| v.next()).collect()
}

/// `packed_file()` with the records of packed section `kind` passed through `f`, rebuilt as a
/// 1.6 file with 2-byte starts.
fn edit_packed(kind: u32, f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    edit_records(&packed_file(), format::PACKED_MINOR, kind, f)
}

#[test]
fn packed_tables_with_four_byte_starts_read_the_same() {
    let mut secs = sections(&packed_file());
    for s in secs.iter_mut().filter(|s| matches!(s.0, section::TENSORS_PACKED | section::OPS_PACKED)) {
        s.1 = table(&records(&s.1), 4);
    }
    let refs: Vec<(u32, &[u8])> = secs.iter().map(|(k, b)| (*k, b.as_slice())).collect();
    let b = assemble(&refs, format::PACKED_MINOR);
    let packed = packed_file();
    assert_same_records(&Model::parse(&b).unwrap(), &Model::parse(&packed).unwrap());
}

#[test]
fn packed_tables_need_format_1_6_and_exclude_the_fixed_ones() {
    let secs = sections(&packed_file());
    let refs: Vec<(u32, &[u8])> = secs.iter().map(|(k, b)| (*k, b.as_slice())).collect();
    // A 1.5 reader skips kinds 7 to 9, and so does this reader in a file declaring 1.5.
    assert_eq!(err(&assemble(&refs, format::PACKED_MINOR - 1)), Error::MissingSection { kind: section::TENSORS });
    let fixed = sections(&good_file());
    for (k, packed_kind) in [(2, section::TENSORS_PACKED), (3, section::OPS_PACKED), (4, section::OPERANDS16)] {
        let mut both = secs.clone();
        both.push(fixed[k].clone());
        assert_eq!(err(&rebuild_at(&both, format::PACKED_MINOR)), Error::DuplicateSection { kind: packed_kind });
    }
}

fn rebuild_at(secs: &[(u32, Vec<u8>)], minor: u16) -> Vec<u8> {
    let refs: Vec<(u32, &[u8])> = secs.iter().map(|(k, b)| (*k, b.as_slice())).collect();
    assemble(&refs, minor)
}

#[test]
fn bad_packed_index() {
    for (kind, at, v) in [(section::TENSORS_PACKED, 4, 3u8), (section::OPS_PACKED, 5, 1), (section::TENSORS_PACKED, 8, 1)] {
        let mut secs = sections(&packed_file());
        secs.iter_mut().find(|s| s.0 == kind).unwrap().1[at] = v;
        assert_eq!(err(&rebuild_at(&secs, format::PACKED_MINOR)), Error::BadSectionLength { kind });
    }
    let mut secs = sections(&packed_file());
    secs.iter_mut().find(|s| s.0 == section::OPERANDS16).unwrap().1.push(0);
    assert_eq!(err(&rebuild_at(&secs, format::PACKED_MINOR)), Error::BadSectionLength { kind: section::OPERANDS16 });
}

#[test]
fn bad_packed_record() {
    let tp = section::TENSORS_PACKED;
    let op = section::OPS_PACKED;
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(u32, usize, Edit, Error)> = vec![
        (tp, 0, Box::new(|r: &mut Vec<u8>| r.push(0)), Error::BadRecord { kind: tp, index: 0 }),
        (
            tp,
            3,
            Box::new(|r: &mut Vec<u8>| {
                r.pop();
            }),
            Error::BadRecord { kind: tp, index: 3 },
        ),
        (
            tp,
            1,
            Box::new(|r: &mut Vec<u8>| {
                r[0] |= 0x80;
                r.insert(1, 0);
            }),
            Error::BadRecord { kind: tp, index: 1 },
        ),
        (op, 2, Box::new(|r: &mut Vec<u8>| r.push(0)), Error::BadRecord { kind: op, index: 2 }),
        (op, 0, Box::new(|r: &mut Vec<u8>| r.clear()), Error::BadRecord { kind: op, index: 0 }),
        (
            op,
            1,
            Box::new(|r: &mut Vec<u8>| {
                let mut v = values(r);
                v[0] = 70_000;
                *r = leb(&v);
            }),
            Error::BadRecord { kind: op, index: 1 },
        ),
        (
            op,
            1,
            Box::new(|r: &mut Vec<u8>| {
                let mut v = values(r);
                v[7] = 27;
                v.resize(8 + 27, 0);
                *r = leb(&v);
            }),
            Error::BadRecord { kind: op, index: 1 },
        ),
        (
            tp,
            3,
            Box::new(|r: &mut Vec<u8>| {
                let mut v = values(r);
                v[2] = 300;
                *r = leb(&v);
            }),
            Error::BadTensor { tensor: 3 },
        ),
        (
            tp,
            1,
            Box::new(|r: &mut Vec<u8>| {
                let mut v = values(r);
                let rank = v[4] as usize;
                v[5 + rank] = u32::MAX / 8;
                *r = leb(&v);
            }),
            Error::BadTensor { tensor: 1 },
        ),
    ];
    for (n, (kind, i, f, want)) in cases.into_iter().enumerate() {
        let b = edit_packed(kind, |recs| f(&mut recs[i]));
        assert_eq!(err(&b), want, "case {n}");
        assert!(!want.to_string().is_empty());
    }
}

/// Files written before 1.4 (no header checksum) still read; their reserved bytes must be zero.
#[test]
fn pre_header_checksum_files_read_and_need_zero_reserved_bytes() {
    let mut b = good_file();
    b[10..12].copy_from_slice(&3u16.to_le_bytes());
    b[28..32].fill(0);
    let m = Model::parse(&b).expect("a 1.3 file");
    assert_eq!(m.minor_version(), 3);
    b[30] = 1;
    assert_eq!(err(&b), Error::NonZeroReserved);
}

#[test]
fn truncated() {
    let b = good_file();
    assert_eq!(err(&b[..20]), Error::Truncated);
    assert_eq!(err(&b[..b.len() - 16]), Error::Truncated);
}

#[test]
fn bad_magic() {
    let mut b = good_file();
    b[0] = b'X';
    assert_eq!(err(&b), Error::BadMagic);
}

#[test]
fn unsupported_version() {
    let mut b = good_file();
    b[8] = 2;
    assert_eq!(err(&b), Error::UnsupportedVersion { major: 2, minor: format::PACKED_MINOR - 1 });
    let mut b = packed_file();
    b[8] = 2;
    assert_eq!(err(&b), Error::UnsupportedVersion { major: 2, minor: format::PACKED_MINOR });
}

#[test]
fn length_mismatch() {
    let mut b = good_file();
    let n = b.len() as u64;
    b.extend_from_slice(&[0; 16]);
    assert_eq!(err(&b), Error::LengthMismatch { declared: n, actual: n + 16 });
}

#[test]
fn checksum_mismatch() {
    let mut b = good_file();
    let last = b.len() - 20;
    b[last] ^= 0x40;
    assert_eq!(err(&b), Error::ChecksumMismatch);
}

#[test]
fn header_checksum_mismatch() {
    let mut b = good_file();
    b[12] ^= 1; // the section count, covered by the header CRC only
    assert_eq!(err(&b), Error::HeaderChecksumMismatch);
}

#[test]
fn non_zero_reserved() {
    let mut b = good_file();
    b[10..12].copy_from_slice(&2u16.to_le_bytes()); // minor damaged to a pre-1.4 value
    assert_eq!(err(&b), Error::NonZeroReserved);
}

#[test]
fn too_many_sections() {
    let mut b = good_file();
    put32(&mut b, 12, 65);
    refix_crc(&mut b);
    assert_eq!(err(&b), Error::TooManySections);
}

#[test]
fn section_checksum_mismatch() {
    let mut b = good_file();
    let off = u64::from_le_bytes(b[format::HEADER_LEN + 8..format::HEADER_LEN + 16].try_into().unwrap()) as usize;
    b[off + 8] ^= 1; // inside META's sha256 field
    refix_crc(&mut b);
    assert_eq!(err(&b), Error::SectionChecksumMismatch { kind: section::META });
}

#[test]
fn section_out_of_bounds() {
    let mut b = good_file();
    let e = format::HEADER_LEN + 8;
    b[e..e + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    refix_crc(&mut b);
    assert_eq!(err(&b), Error::SectionOutOfBounds { kind: section::META });
}

#[test]
fn section_misaligned() {
    let mut b = good_file();
    let e = format::HEADER_LEN + 8;
    let off = u64::from_le_bytes(b[e..e + 8].try_into().unwrap()) + 4;
    b[e..e + 8].copy_from_slice(&off.to_le_bytes());
    refix_crc(&mut b);
    assert_eq!(err(&b), Error::SectionMisaligned { kind: section::META });
}

#[test]
fn duplicate_section() {
    let mut secs = sections(&good_file());
    secs.push(secs[1].clone());
    assert_eq!(err(&rebuild(&secs)), Error::DuplicateSection { kind: section::STRINGS });
}

#[test]
fn missing_section() {
    let mut secs = sections(&good_file());
    secs.retain(|s| s.0 != section::DATA);
    assert_eq!(err(&rebuild(&secs)), Error::MissingSection { kind: section::DATA });
}

#[test]
fn unknown_sections_are_skipped() {
    let mut secs = sections(&good_file());
    secs.push((77, vec![1, 2, 3]));
    assert!(Model::parse(&rebuild(&secs)).is_ok());
}

#[test]
fn bad_section_length() {
    let b = edit(section::TENSORS, |t| t.extend_from_slice(&[0; 4]));
    assert_eq!(err(&b), Error::BadSectionLength { kind: section::TENSORS });
}

#[test]
fn too_many_records() {
    let b = edit(section::TENSORS, |t| t.resize((format::MAX_TENSORS + 1) * format::TENSOR_RECORD_LEN, 0));
    assert_eq!(err(&b), Error::TooManyRecords);
    // Packed: 16385 empty records are a valid index, but too many.
    let b = edit_packed(section::OPS_PACKED, |r| r.resize(format::MAX_OPS + 1, Vec::new()));
    assert_eq!(err(&b), Error::TooManyRecords);
}

#[test]
fn bad_string() {
    let at = tensor_at("x");
    let b = edit(section::TENSORS, |t| put32(t, at + 4, 1 << 30));
    assert_eq!(err(&b), Error::BadString);
}

#[test]
fn bad_tensor() {
    let at = tensor_at("a");
    let b = edit(section::TENSORS, |t| t[at + 8] = 9);
    assert_eq!(err(&b), Error::BadTensor { tensor: 3 });
}

#[test]
fn unsupported_encoding() {
    let at = tensor_at("w");
    let b = edit(section::TENSORS, |t| t[at + 11] = 42);
    assert_eq!(err(&b), Error::UnsupportedEncoding { tensor: 1, encoding: 42 });
}

#[test]
fn data_out_of_bounds() {
    let at = tensor_at("w");
    let b = edit(section::TENSORS, |t| put32(t, at + 36, 1 << 20));
    assert_eq!(err(&b), Error::DataOutOfBounds { tensor: 1 });
}

#[test]
fn data_misaligned() {
    let at = tensor_at("w");
    let b = edit(section::TENSORS, |t| {
        let v = u32::from_le_bytes(t[at + 36..at + 40].try_into().unwrap());
        put32(t, at + 36, v + 4)
    });
    assert_eq!(err(&b), Error::DataMisaligned { tensor: 1 });
}

#[test]
fn bad_data_length() {
    let at = tensor_at("w");
    let b = edit(section::TENSORS, |t| put32(t, at + 40, 4));
    assert_eq!(err(&b), Error::BadDataLength { tensor: 1 });
}

#[test]
fn arena_out_of_bounds() {
    let at = tensor_at("d");
    let b = edit(section::TENSORS, |t| put32(t, at + 36, 1 << 24));
    assert_eq!(err(&b), Error::ArenaOutOfBounds { tensor: 8 });
}

#[test]
fn arena_misaligned() {
    let at = tensor_at("d");
    let b = edit(section::TENSORS, |t| put32(t, at + 36, 4));
    assert_eq!(err(&b), Error::ArenaMisaligned { tensor: 8 });
}

#[test]
fn arena_overlap() {
    // Move `a` (conv output, live 0..=2) and `b` (sigmoid output, live 1..=5) into a fresh region
    // past the old arena: no operator reads one while writing the other, so only the global
    // overlap check can catch it.
    let mut secs = sections(&good_file());
    let meta = secs.iter_mut().find(|s| s.0 == section::META).unwrap();
    let arena = u32::from_le_bytes(meta.1[40..44].try_into().unwrap());
    put32(&mut meta.1, 40, arena * 2);
    let tensors = secs.iter_mut().find(|s| s.0 == section::TENSORS).unwrap();
    put32(&mut tensors.1, tensor_at("a") + 36, arena);
    put32(&mut tensors.1, tensor_at("b") + 36, arena);
    assert_eq!(err(&rebuild(&secs)), Error::ArenaOverlap { a: 3, b: 4 });
}

#[test]
fn bad_lifetime() {
    let at = tensor_at("a");
    let b = edit(section::TENSORS, |t| put32(t, at + 48, 0));
    assert_eq!(err(&b), Error::BadLifetime { tensor: 3 });
}

#[test]
fn bad_alias() {
    let at = tensor_at("a");
    let b = edit(section::TENSORS, |t| put32(t, at + 52, 3));
    assert_eq!(err(&b), Error::BadAlias { tensor: 3 });
}

#[test]
fn no_operators() {
    let mut secs = sections(&good_file());
    for s in secs.iter_mut().filter(|s| s.0 == section::OPS) {
        s.1.clear();
    }
    assert_eq!(err(&rebuild(&secs)), Error::NoOperators);
}

#[test]
fn bad_io() {
    let b = edit(section::META, |m| put32(m, format::META_FIXED_LEN, 1)); // input id → constant `w`
    assert_eq!(err(&b), Error::BadIo);
}

#[test]
fn unsupported_op() {
    let b = edit(section::OPS, |o| o[op_at(1)..op_at(1) + 2].copy_from_slice(&999u16.to_le_bytes()));
    assert_eq!(err(&b), Error::UnsupportedOp { op: 1, kind: 999 });
}

#[test]
fn unsupported_kernel() {
    let b = edit(section::OPS, |o| o[op_at(0) + 2..op_at(0) + 4].copy_from_slice(&7u16.to_le_bytes()));
    assert_eq!(err(&b), Error::UnsupportedKernel { op: 0, kernel: 7 });
}

#[test]
fn bad_attribute() {
    let b = edit(section::OPS, |o| put32(o, op_at(0) + format::OP_ATTRS_AT, 0)); // conv group 0
    assert_eq!(err(&b), Error::BadAttribute { op: 0 });
}

#[test]
fn bad_arity() {
    let b = edit(section::OPS, |o| o[op_at(0) + 4..op_at(0) + 6].copy_from_slice(&1u16.to_le_bytes()));
    assert_eq!(err(&b), Error::BadArity { op: 0 });
}

#[test]
fn bad_operand() {
    let b = edit(section::OPERANDS, |o| put32(o, 0, 5000));
    assert_eq!(err(&b), Error::BadOperand { op: 0 });
}

#[test]
fn shape_mismatch() {
    let at = tensor_at("a"); // [1,3,4,4] → [1,3,2,8]: same bytes, wrong shape for the conv
    let b = edit(section::TENSORS, |t| {
        put32(t, at + 12 + 8, 2);
        put32(t, at + 12 + 12, 8);
    });
    assert_eq!(err(&b), Error::ShapeMismatch { op: 0 });
}

#[test]
fn operand_overlap() {
    let (at_x, at_a) = (tensor_at("x"), tensor_at("a"));
    let b = edit(section::TENSORS, |t| {
        let off_x = u32::from_le_bytes(t[at_x + 36..at_x + 40].try_into().unwrap());
        put32(t, at_a + 36, off_x);
    });
    assert_eq!(err(&b), Error::OperandOverlap { op: 0 });
}

#[test]
fn session_errors() {
    let bytes = good_file();
    let m = Model::parse(&bytes).unwrap();
    let mut small = vec![0u32; 4];
    assert_eq!(
        Session::new(&m, bytemuck::cast_slice_mut(&mut small)).err(),
        Some(Error::ArenaTooSmall { needed: m.arena_len() as u32, got: 16 })
    );
    let mut arena = vec![0u32; m.arena_len() / 4 + 1];
    let bytes_mut: &mut [u8] = bytemuck::cast_slice_mut(&mut arena);
    assert_eq!(Session::new(&m, &mut bytes_mut[1..]).err(), Some(Error::ArenaNotAligned));
    let mut s = Session::new(&m, &mut bytes_mut[..]).unwrap();
    assert_eq!(s.input_mut(1).err(), Some(Error::NoSuchTensor { index: 1 }));
    assert_eq!(s.output(2).err(), Some(Error::NoSuchTensor { index: 2 }));
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    /// Runs a model that parsed, with a zeroed arena of the declared size: must not panic.
    fn run_if_valid(bytes: &[u8]) {
        if let Ok(m) = Model::parse(bytes) {
            let mut arena = vec![0u32; m.arena_len().div_ceil(4)];
            if let Ok(mut s) = Session::new(&m, bytemuck::cast_slice_mut(&mut arena)) {
                let _ = s.run();
                for i in 0..m.num_outputs() {
                    let _ = s.output(i);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Structural fuzzing behind valid checksums: any edit of any section body either is
        /// rejected with an error or yields a model that runs without panicking.
        #[test]
        fn edits_behind_valid_checksums_never_panic(
            section_pick in 0usize..6,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
            form in 0u8..4,
        ) {
            let mut secs = sections(&match form { 0 => good_file(), 1 => packed_file(), _ => compact_file() });
            let n = secs.len();
            let body = &mut secs[section_pick % n].1;
            for (at, v, mode) in edits {
                if body.is_empty() {
                    break;
                }
                let i = at.index(body.len());
                match mode {
                    0 => body[i] = v,
                    1 => body[i] ^= 1 << (v % 8),
                    2 => {
                        // overwrite a whole aligned u32 with a small or extreme value
                        let j = i & !3;
                        if j + 4 <= body.len() {
                            let w: u32 = match v % 4 { 0 => 0, 1 => u32::MAX, 2 => v as u32, _ => 1 << (v % 32) };
                            body[j..j + 4].copy_from_slice(&w.to_le_bytes());
                        }
                    }
                    _ => body.truncate(i),
                }
            }
            run_if_valid(&rebuild_at(&secs, [0, format::PACKED_MINOR, format::COMPACT_MINOR, format::SECTION_TABLE_MINOR][form as usize]));
        }
    }
}

/// A session with a plan gives a session without one's bits on the sample graph plus a Concat of
/// six inputs (more than a step holds, so decoded on every run, and more than a run's short
/// operand array) and an in-place Reshape.
#[test]
fn a_plan_matches_the_plain_session_with_wide_and_skipped_operators() {
    use sprig_runtime::{Plan, Step};
    let mut g = sample_graph();
    let (x, b, e) = (g.inputs[0], 4, 9);
    assert_eq!((g.tensors[b].name.as_str(), g.tensors[e].name.as_str()), ("b", "e"));
    let cat = g.add_tensor("cat", vec![1, 12, 4, 4], None);
    let flat = g.add_tensor("flat", vec![1, 192], None);
    g.nodes.push(Node {
        name: "cat".into(),
        onnx_op: "Concat".into(),
        op: Op::Concat { axis: 1 },
        inputs: vec![x, b, e, x, b, e],
        outputs: vec![cat],
    });
    g.nodes.push(Node {
        name: "flat2".into(),
        onnx_op: "Reshape".into(),
        op: Op::Reshape { shape: Shape::new(&[1, 192]).unwrap() },
        inputs: vec![cat],
        outputs: vec![flat],
    });
    g.outputs.push(flat);
    let bytes = compile(g, WeightFormat::F32, [7; 32]).unwrap().bytes;
    let m = Model::parse(&bytes).unwrap();
    let x: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 8.0).collect();
    let run = |plan: Option<&Plan<'_, '_>>| {
        let mut arena = vec![0u32; m.arena_len() / 4];
        let mut s = match plan {
            Some(p) => Session::with_plan(&m, bytemuck::cast_slice_mut(&mut arena), p).unwrap(),
            None => Session::new(&m, bytemuck::cast_slice_mut(&mut arena)).unwrap(),
        };
        s.input_mut(0).unwrap().copy_from_slice(&x);
        s.run().unwrap();
        (0..m.num_outputs()).flat_map(|i| s.output(i).unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    let mut steps = vec![Step::EMPTY; m.num_ops()];
    let plan = Plan::new(&m, &mut steps).unwrap();
    let (want, got) = (run(None), run(Some(&plan)));
    assert_eq!(want.len(), 2 + 32 + 192);
    assert_eq!(got, want);
    // The Concat's inputs, in order, are in the last output: x, b, e twice, where e is the
    // second output and x the input.
    let (e_out, cat) = (&want[2..34], &want[34..]);
    assert_eq!(&cat[..96], &cat[96..], "the six Concat inputs are x, b, e twice");
    assert_eq!(&cat[..32], &x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()[..], "the first is x");
    assert_eq!(&cat[64..96], e_out, "the third is e");
}
