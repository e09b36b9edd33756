//! Showing a run's progress: a bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use candor_coordinator::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often plain progress lines are printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// Shows progress until the returned handle is finished.
pub struct Display {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Display {
    pub fn start(progress: Arc<Progress>, enabled: bool) -> Display {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let tty = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            if !enabled {
                return;
            }
            let started = Instant::now();
            let bar = tty.then(new_bar);
            let mut last_line = Instant::now();
            let mut base = None;
            loop {
                print_notices(&progress, bar.as_ref());
                let total = progress.total.load(Ordering::Relaxed);
                let done = progress.done.load(Ordering::Relaxed);
                let failed = progress.failed.load(Ordering::Relaxed);
                let failed_text = if failed > 0 {
                    format!("{failed} failed tries  ")
                } else {
                    String::new()
                };
                if total > 0 {
                    let resumed = *base.get_or_insert(progress.resumed.load(Ordering::Relaxed));
                    match &bar {
                        Some(b) => {
                            if b.length() != Some(total) {
                                b.set_length(total);
                                b.set_position(resumed);
                                b.reset_eta();
                            }
                            b.set_position(done);
                            b.set_message(failed_text);
                        }
                        None if last_line.elapsed() >= LINE_EVERY => {
                            last_line = Instant::now();
                            let secs = started.elapsed().as_secs_f64().max(1e-9);
                            let rate = (done - resumed.min(done)) as f64 / secs;
                            let eta = if rate > 0.0 {
                                format!("{:.0}s", (total - done) as f64 / rate)
                            } else {
                                "?".into()
                            };
                            eprintln!(
                                "progress: {done}/{total} jobs ({:.1}%), {failed_text}{}, eta {eta}",
                                done as f64 * 100.0 / total as f64,
                                throughput(rate)
                            );
                        }
                        None => {}
                    }
                }
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            print_notices(&progress, bar.as_ref());
            if let Some(b) = bar {
                b.set_position(progress.done.load(Ordering::Relaxed));
                b.finish();
            }
        });
        Display { stop, task }
    }

    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The terminal's bar: jobs done of all, failed tries, rate and eta.
fn new_bar() -> ProgressBar {
    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} jobs  {msg}{rate}  eta {eta}")
            .expect("valid template")
            .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", throughput(s.per_sec()));
            }),
    );
    b
}

/// A throughput as it reads best: jobs per second from one job a second
/// up, seconds per job below (a slow model's "12.3 s/job", not "0 jobs/s"),
/// and "? s/job" before the first job is done.
fn throughput(jobs_per_sec: f64) -> String {
    if !jobs_per_sec.is_finite() || jobs_per_sec <= 0.0 {
        "? s/job".to_string()
    } else if jobs_per_sec < 1.0 {
        format!("{:.1} s/job", 1.0 / jobs_per_sec)
    } else if jobs_per_sec < 10.0 {
        format!("{jobs_per_sec:.1} jobs/s")
    } else {
        format!("{jobs_per_sec:.0} jobs/s")
    }
}

/// The failures noticed since the last call, a line each, above the bar.
fn print_notices(progress: &Progress, bar: Option<&ProgressBar>) {
    for n in progress.take_notices() {
        match bar {
            Some(b) => b.println(format!("failure: {n}")),
            None => eprintln!("failure: {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::throughput;

    #[test]
    fn slow_models_read_in_seconds_per_job_and_fast_ones_in_jobs_per_second() {
        assert_eq!(throughput(1.0 / 12.3), "12.3 s/job");
        assert_eq!(throughput(0.5), "2.0 s/job");
        assert_eq!(throughput(0.999), "1.0 s/job");
        assert_eq!(throughput(1.0), "1.0 jobs/s");
        assert_eq!(throughput(2.54), "2.5 jobs/s");
        assert_eq!(throughput(37.6), "38 jobs/s");
        for nothing_yet in [0.0, f64::NAN, f64::INFINITY] {
            assert_eq!(throughput(nothing_yet), "? s/job");
        }
    }
}
