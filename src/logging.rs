//! The process-wide tracing subscriber. Installed when the addon loads with the defaults
//! (`RUST_LOG`, else warnings, on stderr, compact), so that a process that configures
//! nothing logs as before; configured once later, by `initTracing` or by the first runtime
//! to start, through two reload handles (filter and output). After that first
//! configuration it is fixed: a second `initTracing` is refused, a later runtime's
//! `logFormat` and `logLevel` are ignored (with a warning when they differ).
//!
//! Reloaded once only, and before any runtime exists: the JSON formatter requires every
//! open span to have been seen by it, which spans opened under an earlier formatter were not.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line per event, span fields after the message.
    #[default]
    Compact,
    /// Several lines per event, for reading in a terminal.
    Pretty,
    /// One JSON object per line: `timestamp`, `level`, `fields.message`, `target`, `span`,
    /// `spans`.
    Json,
}

impl LogFormat {
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Compact => "compact",
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }
    }
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "compact" => Ok(LogFormat::Compact),
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "'{s}' is not a log format: use 'json', 'pretty' or 'compact'"
            )),
        }
    }
}

/// The levels a `logLevel` may name.
pub const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// The level used when neither `RUST_LOG` nor a `logLevel` gives one.
const DEFAULT_LEVEL: &str = "warn";

/// Checks a `logLevel`: one of [`LEVELS`], in any case.
pub fn parse_level(level: &str) -> Result<String, String> {
    let lower = level.to_ascii_lowercase();
    if LEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "'{level}' is not a log level: use 'error', 'warn', 'info', 'debug', 'trace' or 'off'"
        ))
    }
}

/// A failed configuration.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A bad value or a log file that cannot be opened.
    #[error("{0}")]
    Invalid(String),
    /// Tracing was configured already.
    #[error("{0}")]
    AlreadyConfigured(String),
}

/// Who configured the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Configurer {
    InitTracing,
    Runtime,
}

type Base = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type Output = Box<dyn Layer<Base> + Send + Sync>;

struct Installed {
    filter: reload::Handle<EnvFilter, Registry>,
    output: reload::Handle<Output, Base>,
    /// Set by the one configuration: by whom, with which format and level.
    configured: Option<(Configurer, LogFormat, Option<String>)>,
}

enum State {
    NotInstalled,
    Installed(Installed),
    /// Another subscriber was the global default first (an embedder's): it stays in charge.
    Foreign,
}

static STATE: Mutex<State> = Mutex::new(State::NotInstalled);

/// Installs the default subscriber (once; later calls do nothing).
pub fn install_default() {
    let mut state = STATE.lock().unwrap();
    if !matches!(*state, State::NotInstalled) {
        return;
    }
    let (filter, filter_handle) = reload::Layer::new(filter_for(None));
    let (output, output_handle) =
        reload::Layer::<Output, Base>::new(stderr_output(LogFormat::default()));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
    *state = match installed {
        Ok(()) => State::Installed(Installed {
            filter: filter_handle,
            output: output_handle,
            configured: None,
        }),
        Err(_) => State::Foreign,
    };
}

/// `initTracing`: every line to `file` (appended; the file and its folder created when
/// missing). Refused once tracing was configured.
pub fn init_file(file: &Path, format: LogFormat, level: Option<String>) -> Result<(), LogError> {
    install_default();
    let mut state = STATE.lock().unwrap();
    let installed = match &mut *state {
        State::Installed(installed) => installed,
        _ => {
            return Err(LogError::AlreadyConfigured(
                "tracing is already installed by the application (another global subscriber); initTracing cannot replace it".into(),
            ))
        }
    };
    if let Some((by, ..)) = installed.configured {
        let by = match by {
            Configurer::InitTracing => "an earlier initTracing call",
            Configurer::Runtime => "the first runtime's start",
        };
        return Err(LogError::AlreadyConfigured(format!(
            "tracing is already configured (by {by}); call initTracing once, before the first runtime starts"
        )));
    }
    let handle = open_log_file(file)?;
    reload(installed, file_output(format, handle), &level)?;
    installed.configured = Some((Configurer::InitTracing, format, level));
    Ok(())
}

/// A runtime starts: the first one configures the subscriber with its format and level
/// (stderr). Returns a warning to log when this runtime's settings are ignored because
/// tracing was configured already.
pub fn configure_for_runtime(
    format: Option<LogFormat>,
    level: Option<String>,
) -> Result<Option<String>, LogError> {
    install_default();
    let mut state = STATE.lock().unwrap();
    let State::Installed(installed) = &mut *state else {
        return Ok(None);
    };
    match &installed.configured {
        None => {
            let format = format.unwrap_or_default();
            reload(installed, stderr_output(format), &level)?;
            installed.configured = Some((Configurer::Runtime, format, level));
            Ok(None)
        }
        Some((_, current_format, current_level)) => {
            let format_differs = format.is_some_and(|f| f != *current_format);
            let level_differs = level.is_some() && level != *current_level;
            Ok((format_differs || level_differs).then(|| {
                format!(
                    "this runtime's logFormat/logLevel ({}, {}) are ignored: tracing was configured before it started ({}, {}); the first configuration holds for the whole process",
                    format.map_or("-", LogFormat::name),
                    level.as_deref().unwrap_or("-"),
                    current_format.name(),
                    current_level.as_deref().unwrap_or("-"),
                )
            }))
        }
    }
}

fn reload(installed: &Installed, output: Output, level: &Option<String>) -> Result<(), LogError> {
    let failed = |e: reload::Error| LogError::Invalid(format!("cannot configure tracing: {e}"));
    installed.output.reload(output).map_err(failed)?;
    installed
        .filter
        .reload(filter_for(level.as_deref()))
        .map_err(failed)
}

/// `RUST_LOG` when set and valid, else `level` (default warn). sqlx stays at errors: its
/// connection warnings repeat for every pooled connection while a database is down, and
/// the runtime logs the outage once instead.
fn filter_for(level: Option<&str>) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| match level.unwrap_or(DEFAULT_LEVEL) {
        "off" => EnvFilter::new("off"),
        level => EnvFilter::new(format!("{level},sqlx=error")),
    })
}

fn stderr_output(format: LogFormat) -> Output {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    output(format, std::io::stderr, ansi)
}

fn file_output(format: LogFormat, file: Arc<File>) -> Output {
    output(format, file, false)
}

fn output<W>(format: LogFormat, writer: W, ansi: bool) -> Output
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Compact => layer.with_ansi(ansi).compact().boxed(),
        LogFormat::Pretty => layer.with_ansi(ansi).pretty().boxed(),
        LogFormat::Json => layer.with_ansi(false).json().boxed(),
    }
}

/// Opens the log file for appending, creating it and its folder.
fn open_log_file(file: &Path) -> Result<Arc<File>, LogError> {
    let failed = |e: std::io::Error| {
        LogError::Invalid(format!("cannot open log file '{}': {e}", file.display()))
    };
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(failed)?;
    }
    let handle = OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(failed)?;
    Ok(Arc::new(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_levels_are_checked() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().unwrap_err().contains("'xml'"));
        assert_eq!(parse_level("INFO").as_deref(), Ok("info"));
        assert!(parse_level("loud").unwrap_err().contains("'loud'"));
    }

    #[test]
    fn a_log_file_that_cannot_be_created_names_its_path() {
        let e = open_log_file(Path::new("/proc/reprise-no/such/file.log")).unwrap_err();
        assert!(
            e.to_string().contains("'/proc/reprise-no/such/file.log'"),
            "{e}"
        );
    }
}
