//! The stable-Rust fuzzer: runs one target for a while over random mutations of its seeds and
//! says how many inputs it ran, how fast, and which broke it.
//!
//! No coverage (that needs nightly: see `fuzz/`). Instead the target's [`Outcome`] is the
//! feedback: an input whose outcome was not seen before joins the pool that later inputs are
//! mutated from. Mutations are byte-level (bit flips, interesting bytes and integers, inserts,
//! deletes, copies, splices with another input, truncation) plus the target's dictionary tokens.
//! A panic is caught (`catch_unwind`), its input written to `<artifacts>/crash-<hash>`; an input
//! slower than `--slow-ms` is written to `<artifacts>/slow-<hash>`. Runs are reproducible from
//! `--seed`.

use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use fuzz_targets::{Outcome, Target, regressions_dir, seeds_dir, target};

#[derive(Debug, Parser)]
#[command(about = "Fuzz one target on stable Rust: random mutations of its seed corpus")]
struct Args {
    /// `image`, `tsv` or `json_body`.
    target: String,
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Extra seed folder (the committed seeds and regression inputs are always read).
    #[arg(long)]
    corpus: Vec<PathBuf>,
    /// Where crashing and slow inputs go (default `fuzz/artifacts/<target>`).
    #[arg(long)]
    artifacts: Option<PathBuf>,
    /// The random seed (default: from the clock); printed, so a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// The longest input made.
    #[arg(long, default_value_t = 65_536)]
    max_len: usize,
    /// An input running longer than this is saved as slow.
    #[arg(long, default_value_t = 2_000)]
    slow_ms: u64,
    /// Print each outcome the first time it is seen (to see what the run reaches).
    #[arg(long)]
    show_outcomes: bool,
    /// Most inputs kept in the pool.
    #[arg(long, default_value_t = 4_096)]
    pool: usize,
}

/// What the run found.
#[derive(Debug, Default)]
struct Figures {
    executions: u64,
    /// Panic message (with location) → how many inputs hit it.
    crashes: HashMap<String, u64>,
    crash_files: Vec<PathBuf>,
    slow_files: Vec<PathBuf>,
    slowest: Duration,
    outcomes: usize,
}

/// The last panic's message and location, kept by the hook for the report.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> Result<(), String> {
    let args = Args::parse();
    let run = target(&args.target)
        .ok_or_else(|| format!("unknown target `{}`: image, tsv or json_body", args.target))?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    let artifacts = args.artifacts.clone().unwrap_or_else(|| {
        let fuzzing = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = fuzzing.parent().unwrap_or(fuzzing);
        workspace.join("fuzz/artifacts").join(&args.target)
    });
    std::fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let mut folders = vec![seeds_dir(&args.target), regressions_dir(&args.target)];
    folders.extend(args.corpus.iter().cloned());
    let pool = read_corpus(&folders);
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{location}: {message}"));
    }));
    report(&args, seed, pool.len(), &artifacts, None);
    let figures = fuzz(&args, run, pool, seed, &artifacts);
    report(&args, seed, 0, &artifacts, Some(&figures));
    if figures.crashes.is_empty() {
        Ok(())
    } else {
        Err(format!("{} crashing input(s)", figures.crash_files.len()))
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Every file in `folders` (missing folders are skipped); one empty input if there are none.
fn read_corpus(folders: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut pool = Vec::new();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        pool.extend(files.iter().filter_map(|f| std::fs::read(f).ok()));
    }
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    pool
}

fn fuzz(args: &Args, run: Target, mut pool: Vec<Vec<u8>>, seed: u64, artifacts: &Path) -> Figures {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut figures = Figures::default();
    let mut seen: HashSet<Outcome> = HashSet::new();
    let dictionary = dictionary(&args.target);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    // The seeds first, unchanged.
    let mut queue: Vec<Vec<u8>> = pool.clone();
    while Instant::now() < deadline {
        let input = queue.pop().unwrap_or_else(|| {
            let mut input = pool[rng.usize(..pool.len())].clone();
            for _ in 0..rng.usize(1..=4) {
                let other = &pool[rng.usize(..pool.len())];
                mutate(&mut input, other, dictionary, &mut rng);
            }
            input.truncate(args.max_len);
            input
        });
        let started = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| run(&input)));
        let took = started.elapsed();
        figures.executions += 1;
        figures.slowest = figures.slowest.max(took);
        match result {
            Ok(outcome) => {
                if args.show_outcomes && !seen.contains(&outcome) {
                    eprintln!("outcome: {outcome}");
                }
                if seen.insert(outcome) && pool.len() < args.pool {
                    pool.push(input.clone());
                }
            }
            Err(_) => {
                let message = LAST_PANIC
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_default();
                let count = figures.crashes.entry(message).or_default();
                *count += 1;
                if *count <= 3 {
                    figures.crash_files.push(save(artifacts, "crash", &input));
                }
            }
        }
        if took > Duration::from_millis(args.slow_ms) {
            figures.slow_files.push(save(artifacts, "slow", &input));
        }
    }
    figures.outcomes = seen.len();
    figures
}

/// Writes `input` as `<dir>/<kind>-<hash>`.
fn save(dir: &Path, kind: &str, input: &[u8]) -> PathBuf {
    // FNV-1a: a stable name for the same bytes.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let path = dir.join(format!("{kind}-{hash:016x}"));
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("{}: {e}", path.display());
    }
    path
}

/// One random change to `input`; `other` is another pool input to splice with.
fn mutate(input: &mut Vec<u8>, other: &[u8], dictionary: &[&[u8]], rng: &mut fastrand::Rng) {
    const BYTES: [u8; 8] = [0, 1, 0x7F, 0x80, 0xFF, b'\t', b'\n', b'"'];
    const WORDS: [u32; 8] = [0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF];
    let len = input.len();
    let at = |rng: &mut fastrand::Rng| rng.usize(..=len.max(1) - 1);
    match rng.u8(..10) {
        0 if len > 0 => {
            let i = at(rng);
            input[i] ^= 1 << rng.u8(..8);
        }
        1 if len > 0 => {
            let i = at(rng);
            input[i] = BYTES[rng.usize(..BYTES.len())];
        }
        2 if len > 4 => {
            let word = WORDS[rng.usize(..WORDS.len())];
            let width = if rng.bool() { 2 } else { 4 };
            let bytes = if rng.bool() {
                word.to_be_bytes()
            } else {
                word.to_le_bytes()
            };
            let i = rng.usize(..=len - width);
            let source = if rng.bool() {
                &bytes[..width]
            } else {
                &bytes[4 - width..]
            };
            input[i..i + width].copy_from_slice(source);
        }
        3 => {
            let i = rng.usize(..=len);
            let n = rng.usize(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            input.splice(i..i, bytes);
        }
        4 if len > 0 => {
            let i = at(rng);
            let n = rng.usize(1..=(len - i).min(64));
            input.drain(i..i + n);
        }
        5 if len > 0 => {
            let i = at(rng);
            let n = rng.usize(1..=(len - i).min(256));
            let chunk = input[i..i + n].to_vec();
            let j = rng.usize(..=len);
            input.splice(j..j, chunk);
        }
        6 if !other.is_empty() => {
            let cut = rng.usize(..=len);
            let from = rng.usize(..other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        7 if len > 0 => input.truncate(rng.usize(..len)),
        8 | 9 if !dictionary.is_empty() => {
            let token = dictionary[rng.usize(..dictionary.len())];
            let i = rng.usize(..=len);
            input.splice(i..i, token.iter().copied());
        }
        _ => {
            let i = rng.usize(..=len);
            input.insert(i, rng.u8(..));
        }
    }
}

/// Tokens worth inserting whole.
fn dictionary(target: &str) -> &'static [&'static [u8]] {
    match target {
        "tsv" => &[
            b"\t",
            b"\n",
            b"\r\n",
            b"id",
            b"url",
            b"caption",
            b"file",
            b"width",
            b"http://",
            b"https://",
            b"file://",
            b"../",
            b"/",
            b"./",
            b"outside/",
            b"images/a.png",
            b"\xEF\xBB\xBF",
            b"\x00",
            b"\x1b",
            b" ",
            b"#",
            b"?",
            b"\\",
            b"C:\\",
        ],
        "json_body" => &[
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b"\"",
            b"null",
            b"true",
            b"false",
            b"-1",
            b"0",
            b"1e999",
            b"-0.0",
            b"18446744073709551616",
            b"1.5",
            b"\"text\"",
            b"\"vector\"",
            b"\"limit\"",
            b"\"offset\"",
            b"\"filter\"",
            b"\"id\"",
            b"\"query\"",
            b"\"query_vector\"",
            b"\"image_id\"",
            b"\"label\"",
            b"\"note\"",
            b"\"client_id\"",
            b"\"relevant\"",
            b"\"flag\"",
            b"\"none\"",
            b"\"img0\"",
            b"\"license\"",
            b"\\u0000",
            b"\\ud800",
            b"\"content_hash\"",
        ],
        _ => &[
            b"\xFF\xD8\xFF",
            b"\xFF\xD9",
            b"\xFF\xDA",
            b"\xFF\xC0",
            b"\xFF\xC2",
            b"\xFF\xE1",
            b"\x89PNG\r\n\x1a\n",
            b"IHDR",
            b"IDAT",
            b"IEND",
            b"PLTE",
            b"tRNS",
            b"GIF89a",
            b"RIFF",
            b"WEBP",
            b"VP8 ",
            b"VP8L",
            b"VP8X",
            b"BM",
            b"II*\0",
            b"MM\0*",
            b"Exif\0\0",
        ],
    }
}

#[allow(clippy::print_stdout, reason = "the runner's figures are its output")]
fn report(args: &Args, seed: u64, seeds: usize, artifacts: &Path, figures: Option<&Figures>) {
    let Some(f) = figures else {
        println!(
            "fuzzing `{}` for {} s from {seeds} seed input(s), seed {seed}; artifacts in {}",
            args.target,
            args.seconds,
            artifacts.display()
        );
        return;
    };
    let rate = f.executions as f64 / args.seconds.max(1) as f64;
    println!(
        "target {}: {} executions in {} s ({rate:.0}/s), {} distinct outcomes, slowest input {} ms, {} slow input(s), {} crash(es) in {} distinct place(s), seed {seed}",
        args.target,
        f.executions,
        args.seconds,
        f.outcomes,
        f.slowest.as_millis(),
        f.slow_files.len(),
        f.crashes.values().sum::<u64>(),
        f.crashes.len(),
    );
    for (message, count) in &f.crashes {
        println!("  crash ×{count}: {message}");
    }
    for path in f.crash_files.iter().chain(&f.slow_files) {
        println!("  saved {}", path.display());
    }
}
