//! The loop every protforge trainer runs ([`run_loop`]): one optimizer step at a time,
//! a CSV row every `log_every` steps, validation (EMA weights) every `val_every` steps with
//! the best EMA weights kept in `out/best/`, optional EMA snapshots, and the full training
//! state checkpointed every `checkpoint_minutes` and at the end.
//!
//! Models plug in through [`Trainee`]; their logs through [`CsvRow`]. The loop owns the
//! files of a run directory `out/`:
//!
//! | file | content |
//! |---|---|
//! | `checkpoint/` | [`super::TrainCheckpoint`], written by [`Trainee::save`] |
//! | `best/` | EMA weights with the lowest [`CsvRow::selection_loss`] so far |
//! | `snapshots/step_<k>/` | EMA weights every [`LoopSettings::snapshot_every`] steps |
//! | `<prefix>train.csv`, `<prefix>val.csv` | `step,<columns>,wall_s`, one row per logged step |
//!
//! **Logs follow the checkpoint.** When a run resumes at step `k`, rows with a step above
//! `k` (written after the last checkpoint by a run that was then killed) are dropped from
//! both CSV files before appending, so a resumed run's logs are the same as an uninterrupted
//! run's.

use super::TrainState;
use crate::NnError;
use crate::checkpoint::write_atomic;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How often the loop logs, validates, snapshots and checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSettings {
    /// The step the run ends at (its config's `steps`).
    pub total_steps: u64,
    /// Write a training row every this many steps (≥ 1).
    pub log_every: u64,
    /// Validate every this many steps (≥ 1), and always at the last step of an invocation.
    pub val_every: u64,
    /// Save the checkpoint when this many minutes have passed since the last save.
    pub checkpoint_minutes: f64,
    /// Export the EMA weights to `snapshots/step_<k>/` every this many steps.
    pub snapshot_every: Option<u64>,
    /// Validate once before the first step of a fresh run (a row for step 0).
    pub validate_at_start: bool,
    /// Prefix of the CSV file names (`""` → `train.csv`, `"dpo_"` → `dpo_train.csv`).
    pub log_prefix: &'static str,
}

impl LoopSettings {
    /// Settings with no snapshots, no step-0 validation and plain `train.csv`/`val.csv`.
    #[must_use]
    pub fn new(total_steps: u64, log_every: u64, val_every: u64, checkpoint_minutes: f64) -> Self {
        Self { total_steps, log_every, val_every, checkpoint_minutes, snapshot_every: None, validate_at_start: false, log_prefix: "" }
    }
}

/// One row of a training or validation log: the columns between `step` and `wall_s`.
pub trait CsvRow {
    /// Comma-separated column names, e.g. `"loss,grad_norm,lr"`.
    fn header() -> &'static str;
    /// The values, in the order of [`CsvRow::header`].
    fn row(&self) -> String;
}

/// A validation result: a log row plus the loss that selects `best/` (lower is better).
pub trait ValRow: CsvRow {
    /// The figure `best/` is selected on.
    fn selection_loss(&self) -> f64;
}

/// A bare validation loss (column `val_loss`).
impl CsvRow for f64 {
    fn header() -> &'static str {
        "val_loss"
    }

    fn row(&self) -> String {
        format!("{self:.5}")
    }
}

impl ValRow for f64 {
    fn selection_loss(&self) -> f64 {
        *self
    }
}

/// A model trainer as seen by [`run_loop`].
pub trait Trainee {
    /// Training configuration stored in the [`TrainState`].
    type Config;
    /// Training or validation data (one value of this type for each split).
    type Data: ?Sized;
    /// Report of one optimizer step.
    type Step: CsvRow;
    /// Validation report.
    type Val: ValRow;
    /// The crate's error type.
    type Error: From<NnError>;

    /// Loop settings (from the training config).
    fn settings(&self) -> LoopSettings;
    /// The run directory.
    fn out_dir(&self) -> &Path;
    /// Counters of the run (mutable: the loop advances the wall time and best loss).
    fn state_mut(&mut self) -> &mut TrainState<Self::Config>;
    /// One optimizer step; it increments `state.step`.
    ///
    /// # Errors
    /// The model's errors.
    fn train_step(&mut self, train: &Self::Data) -> Result<Self::Step, Self::Error>;
    /// Validation with the EMA weights.
    ///
    /// # Errors
    /// The model's errors.
    fn validate(&mut self, val: &Self::Data) -> Result<Self::Val, Self::Error>;
    /// Save the full training state to `out/checkpoint` (atomically).
    ///
    /// # Errors
    /// I/O errors.
    fn save(&self) -> Result<(), Self::Error>;
    /// Write the EMA weights with the model config to `dir` (a shippable weights folder).
    ///
    /// # Errors
    /// I/O errors.
    fn export_ema(&self, dir: &Path) -> Result<(), Self::Error>;

    /// Train until the configured number of steps (or `max_steps` more): [`run_loop`].
    ///
    /// # Errors
    /// Any step, validation or I/O error (the last checkpoint stays intact).
    fn run(&mut self, train: &Self::Data, val: &Self::Data, max_steps: Option<u64>, on_step: &mut OnStep<'_, Self::Step, Self::Val>) -> Result<(), Self::Error>
    where
        Self: Sized,
    {
        run_loop(self, train, val, max_steps, on_step)
    }
}

/// What [`run_loop`] passes to its caller after every step: the step's report and, when the
/// step validated, the validation report.
pub type OnStep<'a, S, V> = dyn FnMut(&S, Option<&V>) + 'a;

/// An append-only CSV log `step,<columns>,wall_s`.
struct CsvLog {
    path: PathBuf,
    file: File,
}

impl CsvLog {
    /// Open `path` for appending; a new file gets the header, an existing one must have the
    /// same header and loses its rows with a step above `keep_through`.
    fn open(path: PathBuf, columns: &str, keep_through: u64) -> Result<Self, NnError> {
        let header = format!("step,{columns},wall_s");
        let io = |source| NnError::Io { path: path.clone(), source };
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            let mut lines = text.lines();
            let found = lines.next().unwrap_or("");
            if found != header {
                return Err(NnError::StateMismatch {
                    what: path.display().to_string(),
                    reason: format!("log columns '{found}', this trainer writes '{header}'; use another --out"),
                });
            }
            let rows: Vec<&str> = lines.collect();
            let kept: Vec<&str> =
                rows.iter().copied().filter(|r| r.split(',').next().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s <= keep_through)).collect();
            if kept.len() != rows.len() {
                let mut out = header.clone();
                for r in kept {
                    out.push('\n');
                    out.push_str(r);
                }
                out.push('\n');
                write_atomic(&path, out.as_bytes())?;
            }
        } else {
            write_atomic(&path, format!("{header}\n").as_bytes())?;
        }
        let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(|source| NnError::Io { path: path.clone(), source })?;
        Ok(Self { path, file })
    }

    fn write(&mut self, step: u64, row: &str, wall_s: f64) -> Result<(), NnError> {
        writeln!(self.file, "{step},{row},{wall_s:.1}").map_err(|source| NnError::Io { path: self.path.clone(), source })
    }
}

/// Train `t` until its `total_steps` (or `max_steps` more steps, whichever comes first); see
/// the module docs for what is written. `on_step` sees every step's report, and the
/// validation report of the steps that validated (for progress bars).
///
/// # Errors
/// Any step, validation or I/O error. The last checkpoint stays intact.
pub fn run_loop<T: Trainee>(
    t: &mut T,
    train: &T::Data,
    val: &T::Data,
    max_steps: Option<u64>,
    on_step: &mut OnStep<'_, T::Step, T::Val>,
) -> Result<(), T::Error> {
    let s = t.settings();
    let out = t.out_dir().to_path_buf();
    let start_step = t.state_mut().step;
    let mut tlog = CsvLog::open(out.join(format!("{}train.csv", s.log_prefix)), <T::Step as CsvRow>::header(), start_step)?;
    let mut vlog = CsvLog::open(out.join(format!("{}val.csv", s.log_prefix)), <T::Val as CsvRow>::header(), start_step)?;
    let end = max_steps.map_or(s.total_steps, |m| start_step.saturating_add(m).min(s.total_steps));
    let wall0 = t.state_mut().wall_time_s;
    if s.validate_at_start && start_step == 0 && t.state_mut().best_val_loss.is_none() {
        let v = t.validate(val)?;
        vlog.write(0, &v.row(), wall0)?;
    }
    let started = Instant::now();
    let mut last_save = Instant::now();
    while t.state_mut().step < end {
        let report = t.train_step(train)?;
        let wall = wall0 + started.elapsed().as_secs_f64();
        let state = t.state_mut();
        state.wall_time_s = wall;
        let step = state.step;
        if step.is_multiple_of(s.log_every.max(1)) {
            tlog.write(step, &report.row(), wall)?;
        }
        let mut validated = None;
        if step.is_multiple_of(s.val_every.max(1)) || step == end {
            let v = t.validate(val)?;
            vlog.write(step, &v.row(), wall)?;
            let loss = v.selection_loss();
            let state = t.state_mut();
            if state.best_val_loss.is_none_or(|b| loss < b) {
                state.best_val_loss = Some(loss);
                t.export_ema(&out.join("best"))?;
            }
            validated = Some(v);
        }
        if s.snapshot_every.is_some_and(|n| n > 0 && step.is_multiple_of(n)) {
            t.export_ema(&out.join("snapshots").join(format!("step_{step}")))?;
        }
        on_step(&report, validated.as_ref());
        if last_save.elapsed().as_secs_f64() >= s.checkpoint_minutes * 60.0 || step == end {
            t.save()?;
            last_save = Instant::now();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trainer whose "loss" is a fixed sequence, to check the loop's bookkeeping.
    struct Toy {
        out: PathBuf,
        state: TrainState<u32>,
        settings: LoopSettings,
        saves: std::cell::Cell<u32>,
    }

    struct ToyStep(f64);
    impl CsvRow for ToyStep {
        fn header() -> &'static str {
            "loss"
        }
        fn row(&self) -> String {
            format!("{:.2}", self.0)
        }
    }

    /// Validation losses by step: they go down, then up at step 6.
    fn val_loss(step: u64) -> f64 {
        [9.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.5, 0.5, 0.4][step as usize]
    }

    impl Trainee for Toy {
        type Config = u32;
        type Data = ();
        type Step = ToyStep;
        type Val = f64;
        type Error = NnError;
        fn settings(&self) -> LoopSettings {
            self.settings.clone()
        }
        fn out_dir(&self) -> &Path {
            &self.out
        }
        fn state_mut(&mut self) -> &mut TrainState<u32> {
            &mut self.state
        }
        fn train_step(&mut self, (): &()) -> Result<ToyStep, NnError> {
            self.state.step += 1;
            Ok(ToyStep(10.0 - self.state.step as f64))
        }
        fn validate(&mut self, (): &()) -> Result<f64, NnError> {
            Ok(val_loss(self.state.step))
        }
        fn save(&self) -> Result<(), NnError> {
            self.saves.set(self.saves.get() + 1);
            Ok(())
        }
        fn export_ema(&self, dir: &Path) -> Result<(), NnError> {
            std::fs::create_dir_all(dir).map_err(|source| NnError::Io { path: dir.to_path_buf(), source })
        }
    }

    fn toy(out: &Path, step: u64, best: Option<f64>) -> Toy {
        let mut settings = LoopSettings::new(8, 1, 2, 1e9);
        settings.snapshot_every = Some(4);
        Toy {
            out: out.to_path_buf(),
            state: TrainState { step, epoch: 0, seed: 0, best_val_loss: best, wall_time_s: 0.0, config: 0 },
            settings,
            saves: std::cell::Cell::new(0),
        }
    }

    fn steps_of(path: &Path) -> Vec<u64> {
        std::fs::read_to_string(path).unwrap().lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect()
    }

    #[test]
    fn loop_logs_validates_selects_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = toy(dir.path(), 0, None);
        let mut seen = Vec::new();
        run_loop(&mut t, &(), &(), Some(5), &mut |r, v| seen.push((r.0, v.copied()))).unwrap();
        assert_eq!(t.state.step, 5, "max_steps bounds the invocation");
        assert_eq!(seen.len(), 5);
        // Validation at steps 2, 4 and at the invocation's last step 5.
        let validated: Vec<f64> = seen.iter().filter_map(|(_, v)| *v).collect();
        assert_eq!(validated, vec![4.0, 2.0, 1.0]);
        assert_eq!(t.state.best_val_loss, Some(1.0));
        assert_eq!(steps_of(&dir.path().join("train.csv")), vec![1, 2, 3, 4, 5]);
        assert_eq!(steps_of(&dir.path().join("val.csv")), vec![2, 4, 5]);
        let header = std::fs::read_to_string(dir.path().join("train.csv")).unwrap();
        assert!(header.starts_with("step,loss,wall_s\n1,9.00,"), "{header}");
        assert!(dir.path().join("best").is_dir());
        assert!(dir.path().join("snapshots/step_4").is_dir());
        // Step 6 validates worse (1.5): best stays 1.0; 8 is the end.
        run_loop(&mut t, &(), &(), None, &mut |_, _| {}).unwrap();
        assert_eq!(t.state.step, 8);
        assert_eq!(t.state.best_val_loss, Some(0.4));
        assert_eq!(steps_of(&dir.path().join("val.csv")), vec![2, 4, 5, 6, 8]);
        assert_eq!(t.saves.get(), 2, "checkpoint at the end of each invocation (the interval is never reached)");
    }

    #[test]
    fn resume_drops_log_rows_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = toy(dir.path(), 0, None);
        run_loop(&mut a, &(), &(), Some(6), &mut |_, _| {}).unwrap();
        // The process died after step 6 but its checkpoint is from step 3.
        let mut b = toy(dir.path(), 3, Some(3.0));
        run_loop(&mut b, &(), &(), None, &mut |_, _| {}).unwrap();
        assert_eq!(steps_of(&dir.path().join("train.csv")), (1..=8).collect::<Vec<_>>());
        assert_eq!(steps_of(&dir.path().join("val.csv")), vec![2, 4, 6, 8]);
    }

    #[test]
    fn step_zero_validation_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = toy(dir.path(), 0, None);
        t.settings.validate_at_start = true;
        t.settings.log_prefix = "dpo_";
        run_loop(&mut t, &(), &(), Some(2), &mut |_, _| {}).unwrap();
        assert_eq!(steps_of(&dir.path().join("dpo_val.csv")), vec![0, 2]);
        assert!(dir.path().join("dpo_train.csv").is_file());
        assert!(!dir.path().join("train.csv").exists());
    }

    #[test]
    fn a_log_with_other_columns_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.csv"), "step,other,wall_s\n1,2,3\n").unwrap();
        let mut t = toy(dir.path(), 0, None);
        let err = run_loop(&mut t, &(), &(), None, &mut |_, _| {}).unwrap_err().to_string();
        assert!(err.contains("train.csv") && err.contains("step,loss,wall_s"), "{err}");
    }
}
