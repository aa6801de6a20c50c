//! The fuzz target's body (`gateway::fuzzing::check_device_body`) over the seeds
//! `scripts/fuzz` starts from, and over a fixed number of deterministic mutations of
//! them: a short, repeatable stand-in for libFuzzer in every test run.

use std::path::PathBuf;

use gateway::fuzzing::check_device_body;

const CHUNK_LINES: usize = 64;
const MUTATED_BODIES: usize = 20_000;

/// 64-line chunks of the real device exports, and `fuzz/seeds/`.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for file in [
        "caoka_1_attlog.dat",
        "clockwork_1_attlog.dat",
        "clockwork_2_attlog.dat",
    ] {
        let bytes = std::fs::read(crate::real_devices_dir().join(file)).unwrap();
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        seeds.extend(lines.chunks(CHUNK_LINES).map(<[&[u8]]>::concat));
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the OPERLOG seeds in {}", dir.display());
    seeds.extend(files.iter().map(|f| std::fs::read(f).unwrap()));
    seeds
}

/// SplitMix64: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes devices and cut connections put where they should not be.
const ODD_BYTES: &[&[u8]] = &[
    b"\r",
    b"\n",
    b"\t",
    b"\0",
    b"\xff",
    b" ",
    b"=",
    b"\r\n",
    b"\xd5\xc5\xc8\xfd", // 张三 in GBK
    b"\xc0\xee",         // 李 in GBK
    b"\xe5\xbc",         // a UTF-8 character cut short
    b"ZZZZZZZZZZ",
    b"9999999999999999999999999",
    b"2021-03-14 02:30:00",
    b"2047-03-07 10:10:37",
    b"USER PIN=",
    b"OPLOG ",
    b"BIODATA Pin=1\tType=",
    b"&Return=",
];

/// A body cut from one seed (a window of 1 to 16 lines), then mangled 1 to 4 times.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let seed = &seeds[rng.below(seeds.len())];
    let lines: Vec<&[u8]> = seed.split_inclusive(|&b| b == b'\n').collect();
    let start = rng.below(lines.len());
    let end = (start + 1 + rng.below(16)).min(lines.len());
    let mut body = lines[start..end].concat();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(body.len() + 1);
        match rng.below(7) {
            0 if !body.is_empty() => {
                let i = rng.below(body.len());
                body[i] ^= 1 << rng.below(8);
            }
            1 => body.truncate(at),
            2 => {
                let odd = ODD_BYTES[rng.below(ODD_BYTES.len())];
                body.splice(at..at, odd.iter().copied());
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(200)).min(other.len());
                body.splice(at..at, other[from..to].iter().copied());
            }
            4 => {
                let to = (at + rng.below(40)).min(body.len());
                body.drain(at..to);
            }
            5 if !body.is_empty() => {
                let i = rng.below(body.len());
                body[i] = rng.next() as u8;
            }
            _ => {
                let to = (at + rng.below(80)).min(body.len());
                let copy = body[at..to].to_vec();
                body.splice(at..at, copy);
            }
        }
    }
    body
}

#[test]
fn every_seed_keeps_the_law() {
    let seeds = seeds();
    assert!(seeds.len() > 800, "{} seeds", seeds.len());
    for (i, seed) in seeds.iter().enumerate() {
        check(i, seed);
    }
}

#[test]
fn mutated_seeds_keep_the_law() {
    let seeds = seeds();
    let mut rng = Rng(0x1ed9_e1c1_0c4b);
    for i in 0..MUTATED_BODIES {
        let body = mutate(&mut rng, &seeds);
        check(i, &body);
    }
}

/// Runs the check, naming the body that broke it so it can be replayed.
fn check(i: usize, body: &[u8]) {
    if let Err(panic) = std::panic::catch_unwind(|| check_device_body(body)) {
        eprintln!(
            "body {i} broke the law: {:?}",
            String::from_utf8_lossy(body)
        );
        std::panic::resume_unwind(panic);
    }
}
