//! ISO 50006 energy baselines: an ordinary least squares fit of period
//! energy on production volume and, optionally, heating or cooling
//! degree-days ([`fit`], [`Baseline`]), then the cumulative sum of
//! (actual − expected) energy over the reporting periods after the baseline
//! period ([`Cusum`], [`BaselineTracker`]). Formulas: `docs/energy.md`.

use crate::StreamError;
use serde::Serialize;

/// One period of data: (production volume in units, degree-days if the
/// model uses them, energy in kWh).
pub type PeriodData = (f64, Option<f64>, f64);

/// The fitted model: kWh = intercept + kwh_per_unit × units
/// [+ kwh_per_degree_day × degree-days].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coefficients {
    /// Energy of a period with no production (and no degree-days), kWh.
    pub intercept_kwh: f64,
    /// Marginal energy per unit produced, kWh/unit.
    pub kwh_per_unit: f64,
    /// Marginal energy per degree-day, kWh/(K·d); `None` without degree-days.
    pub kwh_per_degree_day: Option<f64>,
}

/// An energy baseline (ISO 50006 EnB) fitted by ordinary least squares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Baseline {
    /// The fitted model.
    pub coefficients: Coefficients,
    /// Coefficient of determination, 0..=1 (1 when the energy is the same in
    /// every period, which the intercept alone explains).
    pub r2: f64,
    /// Periods the model was fitted on.
    pub n: usize,
}

impl Baseline {
    /// Model parameters: the intercept and one per regressor.
    pub fn parameters(&self) -> usize {
        2 + usize::from(self.coefficients.kwh_per_degree_day.is_some())
    }

    /// Expected energy of a period, kWh. `degree_days` must be given exactly
    /// when the model uses them.
    pub fn expected(&self, units: f64, degree_days: Option<f64>) -> Result<f64, StreamError> {
        let c = &self.coefficients;
        let dd_term = match (c.kwh_per_degree_day, degree_days) {
            (Some(b), Some(dd)) => b * dd,
            (None, None) => 0.0,
            (model, _) => {
                return Err(StreamError::DegreeDaysMismatch {
                    index: None,
                    model_uses_them: model.is_some(),
                })
            }
        };
        Ok(c.intercept_kwh + c.kwh_per_unit * units + dd_term)
    }
}

/// Mean by two passes: the second corrects the rounding of the first.
fn mean(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = xs.clone().count() as f64;
    let m = xs.clone().sum::<f64>() / n;
    m + xs.map(|x| x - m).sum::<f64>() / n
}

/// Whether a regressor is (numerically) constant.
fn constant(xs: impl Iterator<Item = f64>) -> bool {
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    // A spread below 1e-12 of the magnitude is rounding noise: the slope
    // would be noise divided by noise.
    hi - lo <= 1e-12 * lo.abs().max(hi.abs())
}

/// 1 − r² below this means the two regressors are collinear.
const COLLINEAR: f64 = 1e-10;

/// Fits an energy baseline to periods of (units, degree-days, kWh).
///
/// Either every period has degree-days or none has. Needs at least
/// parameters + 2 periods (4 without degree-days, 5 with), a varying
/// production volume, varying degree-days, and regressors that are not
/// collinear. The regressors and the energy are centred on their means
/// first, which removes the intercept from the normal equations and keeps
/// them well conditioned; the 2×2 system is solved in correlation form.
pub fn fit(points: &[PeriodData]) -> Result<Baseline, StreamError> {
    let with_dd = check_points(points)?;
    let m = Moments::of(points);
    let (b_unit, b_dd) = m.slopes(with_dd)?;
    let intercept = m.my - b_unit * m.mx - b_dd.map_or(0.0, |b| b * m.md);
    Ok(Baseline {
        coefficients: Coefficients {
            intercept_kwh: intercept,
            kwh_per_unit: b_unit,
            kwh_per_degree_day: b_dd,
        },
        r2: m.r2(points, b_unit, b_dd),
        n: points.len(),
    })
}

/// Checks that the periods can be fitted (see [`fit`]); returns whether
/// they have degree-days.
fn check_points(points: &[PeriodData]) -> Result<bool, StreamError> {
    let with_dd = points.first().is_some_and(|p| p.1.is_some());
    let parameters = 2 + usize::from(with_dd);
    let needed = parameters + 2;
    for (index, &(units, dd, kwh)) in points.iter().enumerate() {
        if dd.is_some() != with_dd {
            return Err(StreamError::DegreeDaysMismatch {
                index: Some(index),
                model_uses_them: with_dd,
            });
        }
        for (field, value) in [
            ("units", units),
            ("degree_days", dd.unwrap_or(0.0)),
            ("kwh", kwh),
        ] {
            if !value.is_finite() {
                return Err(StreamError::NonFinite {
                    index,
                    field,
                    value,
                });
            }
        }
    }
    let n = points.len();
    if n < needed {
        return Err(StreamError::TooFewPeriods {
            n,
            parameters,
            needed,
        });
    }
    if constant(points.iter().map(|p| p.0)) {
        return Err(StreamError::ZeroVariance {
            regressor: "production volume (units)",
        });
    }
    if with_dd && constant(points.iter().map(|p| p.1.unwrap_or(0.0))) {
        return Err(StreamError::ZeroVariance {
            regressor: "degree-days",
        });
    }
    Ok(with_dd)
}

/// The means of units, degree-days and energy, and the sums of squares
/// and cross products of the centred values.
struct Moments {
    mx: f64,
    md: f64,
    my: f64,
    sxx: f64,
    sdd: f64,
    sxd: f64,
    sxy: f64,
    sdy: f64,
    syy: f64,
}

impl Moments {
    fn of(points: &[PeriodData]) -> Moments {
        let xs = || points.iter().map(|p| p.0);
        let ds = || points.iter().map(|p| p.1.unwrap_or(0.0));
        let ys = || points.iter().map(|p| p.2);
        let (mx, md, my) = (mean(xs()), mean(ds()), mean(ys()));
        let (mut sxx, mut sdd, mut sxd, mut sxy, mut sdy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for &(x, d, y) in points {
            let (u, v, w) = (x - mx, d.unwrap_or(0.0) - md, y - my);
            sxx += u * u;
            sdd += v * v;
            sxd += u * v;
            sxy += u * w;
            sdy += v * w;
            syy += w * w;
        }
        Moments {
            mx,
            md,
            my,
            sxx,
            sdd,
            sxd,
            sxy,
            sdy,
            syy,
        }
    }

    /// The slopes (kWh per unit, kWh per degree-day) from the normal
    /// equations; refused when the two regressors are collinear.
    fn slopes(&self, with_dd: bool) -> Result<(f64, Option<f64>), StreamError> {
        let Moments {
            sxx,
            sdd,
            sxd,
            sxy,
            sdy,
            ..
        } = *self;
        if !with_dd {
            return Ok((sxy / sxx, None));
        }
        let (rx, rd) = (sxx.sqrt(), sdd.sqrt());
        let r = sxd / (rx * rd);
        let det = 1.0 - r * r;
        if det.is_nan() || det < COLLINEAR {
            return Err(StreamError::Singular { correlation: r });
        }
        // Normal equations of the standardised regressors:
        // [1 r; r 1] β' = z, with b = β' / sqrt(S_kk).
        let (zx, zd) = (sxy / rx, sdy / rd);
        Ok(((zx - r * zd) / det / rx, Some((zd - r * zx) / det / rd)))
    }

    /// R² of the fitted slopes.
    fn r2(&self, points: &[PeriodData], b_unit: f64, b_dd: Option<f64>) -> f64 {
        let (mx, md, my) = (self.mx, self.md, self.my);
        let ss_res: f64 = points
            .iter()
            .map(|&(x, d, y)| {
                let e = (y - my)
                    - b_unit * (x - mx)
                    - b_dd.map_or(0.0, |b| b * (d.unwrap_or(0.0) - md));
                e * e
            })
            .sum();
        // In exact arithmetic 0 <= SS_res <= SS_tot; clamp the rounding.
        if self.syy > 0.0 {
            (1.0 - ss_res / self.syy).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// Cumulative sum of (actual − expected) energy, kWh. Falling means savings
/// against the baseline, rising means overconsumption; a change of slope
/// dates a change in energy performance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cusum {
    /// The running sum, kWh.
    pub sum: f64,
}

impl Cusum {
    /// Adds one period and returns the running sum.
    pub fn push(&mut self, actual: f64, expected: f64) -> f64 {
        self.sum += actual - expected;
        self.sum
    }
}

/// One reporting period compared with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Deviation {
    /// Energy the baseline expects for the period, kWh.
    pub expected_kwh: f64,
    /// Energy used, kWh.
    pub actual_kwh: f64,
    /// actual − expected.
    pub deviation_kwh: f64,
    /// Running sum of the deviations since the baseline was fitted.
    pub cusum_kwh: f64,
    /// R² of the baseline.
    pub r2: f64,
    /// The baseline's coefficients.
    pub coefficients: Coefficients,
}

/// What [`BaselineTracker::push`] did with a period.
#[derive(Debug)]
pub enum TrackerStep {
    /// Kept for the baseline: `have` of the `need` periods collected.
    Collecting {
        /// Periods collected.
        have: usize,
        /// Periods in the baseline period.
        need: usize,
    },
    /// Kept, and the baseline period is complete: this is the fitted
    /// baseline. Reporting starts with the next period.
    Fitted(Baseline),
    /// Kept, but the `have` periods collected so far cannot be fitted; the
    /// fit is tried again with the next period.
    FitFailed {
        /// Periods collected.
        have: usize,
        /// Why they cannot be fitted.
        error: StreamError,
    },
    /// A reporting period.
    Tracked(Deviation),
}

/// Collects the baseline period, fits it once, then tracks every later
/// period against it with a CUSUM.
#[derive(Debug, Clone)]
pub struct BaselineTracker {
    baseline_periods: usize,
    degree_days: bool,
    training: Vec<PeriodData>,
    baseline: Option<Baseline>,
    cusum: Cusum,
}

impl BaselineTracker {
    /// A tracker that fits on the first `baseline_periods` periods (more if
    /// those cannot be fitted). `degree_days`: whether periods carry them.
    pub fn new(baseline_periods: usize, degree_days: bool) -> Self {
        BaselineTracker {
            baseline_periods,
            degree_days,
            training: Vec::new(),
            baseline: None,
            cusum: Cusum::default(),
        }
    }

    /// The baseline, once fitted.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// Adds the next period. A period with a non-finite value, or with
    /// degree-days given when the tracker does not use them (or the other
    /// way round), is refused with an error and changes nothing.
    pub fn push(
        &mut self,
        units: f64,
        degree_days: Option<f64>,
        kwh: f64,
    ) -> Result<TrackerStep, StreamError> {
        let index = self.training.len();
        if degree_days.is_some() != self.degree_days {
            return Err(StreamError::DegreeDaysMismatch {
                index: Some(index),
                model_uses_them: self.degree_days,
            });
        }
        for (field, value) in [
            ("units", units),
            ("degree_days", degree_days.unwrap_or(0.0)),
            ("kwh", kwh),
        ] {
            if !value.is_finite() {
                return Err(StreamError::NonFinite {
                    index,
                    field,
                    value,
                });
            }
        }
        if let Some(b) = &self.baseline {
            let expected_kwh = b.expected(units, degree_days)?;
            let cusum_kwh = self.cusum.push(kwh, expected_kwh);
            return Ok(TrackerStep::Tracked(Deviation {
                expected_kwh,
                actual_kwh: kwh,
                deviation_kwh: kwh - expected_kwh,
                cusum_kwh,
                r2: b.r2,
                coefficients: b.coefficients,
            }));
        }
        self.training.push((units, degree_days, kwh));
        let have = self.training.len();
        if have < self.baseline_periods {
            return Ok(TrackerStep::Collecting {
                have,
                need: self.baseline_periods,
            });
        }
        match fit(&self.training) {
            Ok(b) => {
                self.baseline = Some(b);
                // The training data is no longer needed.
                self.training = Vec::new();
                Ok(TrackerStep::Fitted(b))
            }
            Err(error) => Ok(TrackerStep::FitFailed { have, error }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// kWh = 500 + 0.02·units + 12·HDD, exactly.
    fn exact_points() -> Vec<PeriodData> {
        let units = [
            12_000.0, 15_500.0, 9_800.0, 20_100.0, 17_250.0, 11_000.0, 14_000.0,
        ];
        let hdd = [8.0, 3.5, 12.0, 0.0, 6.25, 10.0, 1.0];
        units
            .iter()
            .zip(hdd)
            .map(|(&u, d)| (u, Some(d), 500.0 + 0.02 * u + 12.0 * d))
            .collect()
    }

    #[test]
    fn exact_model_is_recovered() {
        let b = fit(&exact_points()).unwrap();
        let c = b.coefficients;
        assert!((c.intercept_kwh - 500.0).abs() < 1e-9, "{c:?}");
        assert!((c.kwh_per_unit - 0.02).abs() < 1e-12, "{c:?}");
        assert!((c.kwh_per_degree_day.unwrap() - 12.0).abs() < 1e-9, "{c:?}");
        assert_eq!(b.r2, 1.0);
        assert_eq!((b.n, b.parameters()), (7, 3));
        let e = b.expected(10_000.0, Some(5.0)).unwrap();
        assert!((e - (500.0 + 200.0 + 60.0)).abs() < 1e-9);
        assert!(matches!(
            b.expected(10_000.0, None),
            Err(StreamError::DegreeDaysMismatch {
                index: None,
                model_uses_them: true
            })
        ));
        // Units only.
        let pts: Vec<PeriodData> = (0..5)
            .map(|i| {
                let u = 1000.0 + 250.0 * f64::from(i);
                (u, None, 80.0 + 0.5 * u)
            })
            .collect();
        let b = fit(&pts).unwrap();
        assert!((b.coefficients.intercept_kwh - 80.0).abs() < 1e-9);
        assert!((b.coefficients.kwh_per_unit - 0.5).abs() < 1e-12);
        assert_eq!(b.coefficients.kwh_per_degree_day, None);
        assert_eq!(b.r2, 1.0);
    }

    /// A deterministic noise in [-1, 1).
    fn noise(i: u32) -> f64 {
        let z = u64::from(i)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(17);
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// Pearson correlation squared: an independent formula for R² (for OLS
    /// with an intercept, R² = corr(y, ŷ)²; with one regressor, corr(x, y)²).
    fn corr2(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov * cov / (va * vb)
    }

    #[test]
    fn noisy_fit_r2_matches_the_correlation() {
        // One regressor: R² = corr(units, kWh)².
        let pts: Vec<PeriodData> = (0..30)
            .map(|i| {
                let u = 5_000.0 + 400.0 * f64::from(i % 11) + 37.0 * f64::from(i);
                (u, None, 300.0 + 0.03 * u + 40.0 * noise(i))
            })
            .collect();
        let b = fit(&pts).unwrap();
        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.2).collect();
        let r2 = corr2(&xs, &ys);
        assert!((b.r2 - r2).abs() < 1e-12, "{} vs {r2}", b.r2);
        assert!(b.r2 > 0.5 && b.r2 < 1.0, "{}", b.r2);
        assert!((b.coefficients.kwh_per_unit - 0.03).abs() < 0.005);

        // Two regressors: R² = corr(kWh, fitted)².
        let pts: Vec<PeriodData> = (0..40)
            .map(|i| {
                let u = 8_000.0 + 900.0 * f64::from(i % 7);
                let d = 2.0 + f64::from((i * 5) % 13);
                (
                    u,
                    Some(d),
                    900.0 + 0.015 * u + 9.0 * d + 25.0 * noise(i + 100),
                )
            })
            .collect();
        let b = fit(&pts).unwrap();
        let fitted: Vec<f64> = pts.iter().map(|p| b.expected(p.0, p.1).unwrap()).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.2).collect();
        let r2 = corr2(&ys, &fitted);
        assert!((b.r2 - r2).abs() < 1e-10, "{} vs {r2}", b.r2);
        assert!(b.r2 > 0.8 && b.r2 < 1.0, "{}", b.r2);
    }

    #[test]
    fn unfittable_data_is_refused() {
        let mut pts = exact_points();
        pts.truncate(4);
        assert!(matches!(
            fit(&pts),
            Err(StreamError::TooFewPeriods {
                n: 4,
                parameters: 3,
                needed: 5
            })
        ));
        assert!(matches!(
            fit(&[]),
            Err(StreamError::TooFewPeriods {
                n: 0,
                parameters: 2,
                needed: 4
            })
        ));
        let flat: Vec<PeriodData> = (0..6).map(|i| (100.0, None, f64::from(i))).collect();
        assert!(matches!(
            fit(&flat),
            Err(StreamError::ZeroVariance { regressor }) if regressor.contains("units")
        ));
        let flat_dd: Vec<PeriodData> = (0..6)
            .map(|i| (f64::from(i), Some(3.0), f64::from(i)))
            .collect();
        assert!(matches!(
            fit(&flat_dd),
            Err(StreamError::ZeroVariance {
                regressor: "degree-days"
            })
        ));
        // Degree-days a linear function of the units: singular.
        let collinear: Vec<PeriodData> = (0..6)
            .map(|i| {
                let u = 1000.0 + 100.0 * f64::from(i);
                (u, Some(2.0 + 0.01 * u), 50.0 + f64::from(i * i))
            })
            .collect();
        let e = fit(&collinear).unwrap_err();
        assert!(matches!(e, StreamError::Singular { .. }), "{e}");
        assert!(e.to_string().contains("cannot be separated"), "{e}");
        let mut mixed = exact_points();
        mixed[3].1 = None;
        assert!(matches!(
            fit(&mixed),
            Err(StreamError::DegreeDaysMismatch {
                index: Some(3),
                model_uses_them: true
            })
        ));
        let mut nan = exact_points();
        nan[2].2 = f64::NAN;
        assert!(matches!(
            fit(&nan),
            Err(StreamError::NonFinite {
                index: 2,
                field: "kwh",
                ..
            })
        ));
    }

    #[test]
    fn constant_energy_is_explained_by_the_intercept() {
        let pts: Vec<PeriodData> = (0..5).map(|i| (f64::from(i) * 10.0, None, 42.0)).collect();
        let b = fit(&pts).unwrap();
        assert_eq!(b.r2, 1.0);
        assert!(b.coefficients.kwh_per_unit.abs() < 1e-12);
        assert!((b.coefficients.intercept_kwh - 42.0).abs() < 1e-12);
    }

    #[test]
    fn cusum_accumulates() {
        let mut c = Cusum::default();
        assert_eq!(c.push(110.0, 100.0), 10.0);
        assert_eq!(c.push(95.0, 100.0), 5.0);
        assert_eq!(c.push(90.0, 100.0), -5.0);
        assert_eq!(c.sum, -5.0);
    }

    #[test]
    fn tracker_fits_after_the_baseline_period_then_tracks() {
        let mut t = BaselineTracker::new(7, true);
        let pts = exact_points();
        for (i, &(u, d, k)) in pts.iter().enumerate().take(6) {
            match t.push(u, d, k).unwrap() {
                TrackerStep::Collecting { have, need } => assert_eq!((have, need), (i + 1, 7)),
                other => panic!("{other:?}"),
            }
        }
        let (u, d, k) = pts[6];
        let b = match t.push(u, d, k).unwrap() {
            TrackerStep::Fitted(b) => b,
            other => panic!("{other:?}"),
        };
        assert!((b.coefficients.kwh_per_unit - 0.02).abs() < 1e-12);
        assert_eq!(t.baseline(), Some(&b));
        // 100 kWh over, then 30 under: the CUSUM follows.
        let expected = 500.0 + 0.02 * 10_000.0 + 12.0 * 4.0;
        let steps = [(expected + 100.0, 100.0), (expected - 30.0, 70.0)];
        for (actual, cusum) in steps {
            match t.push(10_000.0, Some(4.0), actual).unwrap() {
                TrackerStep::Tracked(dev) => {
                    assert!((dev.expected_kwh - expected).abs() < 1e-9);
                    assert_eq!(dev.actual_kwh, actual);
                    assert!((dev.deviation_kwh - (actual - expected)).abs() < 1e-9);
                    assert!((dev.cusum_kwh - cusum).abs() < 1e-9, "{dev:?}");
                    assert_eq!(dev.r2, 1.0);
                    assert_eq!(dev.coefficients, b.coefficients);
                }
                other => panic!("{other:?}"),
            }
        }
        // A period without degree-days is refused and changes nothing.
        assert!(matches!(
            t.push(10_000.0, None, 1.0),
            Err(StreamError::DegreeDaysMismatch { .. })
        ));
        assert!(matches!(
            t.push(f64::INFINITY, Some(1.0), 1.0),
            Err(StreamError::NonFinite { field: "units", .. })
        ));
        match t.push(10_000.0, Some(4.0), expected) {
            Ok(TrackerStep::Tracked(dev)) => assert!((dev.cusum_kwh - 70.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tracker_retries_the_fit_with_more_data() {
        let mut t = BaselineTracker::new(4, false);
        // A week of the same production: no slope can be fitted yet.
        for i in 0..3 {
            assert!(matches!(
                t.push(1000.0, None, 100.0 + f64::from(i)),
                Ok(TrackerStep::Collecting { .. })
            ));
        }
        match t.push(1000.0, None, 104.0).unwrap() {
            TrackerStep::FitFailed {
                have: 4,
                error: StreamError::ZeroVariance { .. },
            } => {}
            other => panic!("{other:?}"),
        }
        assert!(t.baseline().is_none());
        match t.push(2000.0, None, 201.0).unwrap() {
            TrackerStep::Fitted(b) => {
                assert_eq!(b.n, 5);
                assert!(b.coefficients.kwh_per_unit > 0.09);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            t.push(1500.0, None, 150.0),
            Ok(TrackerStep::Tracked(_))
        ));
    }

    fn points_strategy() -> impl Strategy<Value = (Vec<PeriodData>, bool)> {
        (5usize..40, any::<bool>()).prop_flat_map(|(n, with_dd)| {
            (
                prop::collection::vec((0.0f64..50_000.0, 0.0f64..25.0, -1_000.0f64..1_000.0), n),
                (0.0f64..2_000.0, 0.0f64..0.1, 0.0f64..50.0),
            )
                .prop_map(move |(raw, (a, b, c))| {
                    let pts = raw
                        .into_iter()
                        .map(|(u, d, e)| {
                            let kwh = a + b * u + if with_dd { c * d } else { 0.0 } + e;
                            (u, with_dd.then_some(d), kwh)
                        })
                        .collect();
                    (pts, with_dd)
                })
        })
    }

    proptest! {
        #[test]
        fn residuals_sum_to_zero_and_r2_is_a_fraction((pts, with_dd) in points_strategy()) {
            // Shrinking reaches constant or collinear regressors: those are
            // refused, not mis-fitted.
            let b = match fit(&pts) {
                Ok(b) => b,
                Err(StreamError::Singular { correlation }) => {
                    prop_assert!(correlation.abs() > 0.999_99);
                    return Ok(());
                }
                Err(StreamError::ZeroVariance { regressor }) => {
                    let column: Vec<f64> = if regressor.contains("units") {
                        pts.iter().map(|p| p.0).collect()
                    } else {
                        pts.iter().map(|p| p.1.unwrap_or(0.0)).collect()
                    };
                    prop_assert!(column.iter().all(|&v| v == column[0]), "{:?}", column);
                    return Ok(());
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            prop_assert_eq!(b.n, pts.len());
            prop_assert_eq!(b.coefficients.kwh_per_degree_day.is_some(), with_dd);
            let fitted: Vec<f64> = pts.iter().map(|p| b.expected(p.0, p.1).unwrap()).collect();
            let ys: Vec<f64> = pts.iter().map(|p| p.2).collect();
            let resid: Vec<f64> = ys.iter().zip(&fitted).map(|(y, f)| y - f).collect();
            let scale = ys.iter().fold(1.0f64, |m, y| m.max(y.abs()));
            let sum: f64 = resid.iter().sum();
            prop_assert!(sum.abs() <= 1e-9 * scale * pts.len() as f64, "Σe = {}", sum);
            // Residuals are orthogonal to each regressor (the normal equations).
            let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
            let xe: f64 = xs.iter().zip(&resid).map(|(x, e)| x * e).sum();
            let xscale: f64 = xs.iter().zip(&resid).map(|(x, e)| (x * e).abs()).sum();
            prop_assert!(xe.abs() <= 1e-8 * xscale.max(1.0), "Σxe = {} of {}", xe, xscale);
            prop_assert!((0.0..=1.0).contains(&b.r2), "r2 = {}", b.r2);
            let r2 = corr2(&ys, &fitted);
            prop_assert!((b.r2 - r2).abs() < 1e-8, "r2 {} vs corr² {}", b.r2, r2);
        }
    }
}
