//! Monthly revenue forecasts with prediction intervals.
//!
//! - Linear: least squares on the month index. The interval of a forecast h months
//!   out is `z * s * sqrt(1 + 1/n + (x - mean)^2 / Sxx)`, s the residual standard error
//!   (n - 2 degrees of freedom). Needs at least 3 months.
//! - Holt-Winters: additive level, trend and 12-month season; the smoothing factors
//!   are the grid point (0.1 ... 0.9 each) with the least squared one-step error. The
//!   interval widens with the horizon as `z * sigma * sqrt(h)`. Needs two full seasons.
//!
//! Both use the normal quantiles (z = 1.2816 for 80%, 1.96 for 95%), and lower bounds
//! are cut at zero: revenue is not negative.

use serde::Serialize;

pub const Z80: f64 = 1.281_551_565_5;
pub const Z95: f64 = 1.959_963_985;
pub const SEASON: usize = 12;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub value: f64,
    pub lower_80: f64,
    pub upper_80: f64,
    pub lower_95: f64,
    pub upper_95: f64,
}

fn point(value: f64, spread: f64) -> Point {
    Point {
        value,
        lower_80: (value - Z80 * spread).max(0.0),
        upper_80: value + Z80 * spread,
        lower_95: (value - Z95 * spread).max(0.0),
        upper_95: value + Z95 * spread,
    }
}

/// Slope, intercept and residual standard error of y on 0, 1, 2, ...
pub fn least_squares(history: &[f64]) -> (f64, f64, f64) {
    let n = history.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = history.iter().sum::<f64>() / n;
    let sxx: f64 = (0..history.len())
        .map(|i| (i as f64 - mean_x).powi(2))
        .sum();
    let sxy: f64 = history
        .iter()
        .enumerate()
        .map(|(i, y)| (i as f64 - mean_x) * (y - mean_y))
        .sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let sse: f64 = history
        .iter()
        .enumerate()
        .map(|(i, y)| (y - (intercept + slope * i as f64)).powi(2))
        .sum();
    let s = if history.len() > 2 {
        (sse / (n - 2.0)).sqrt()
    } else {
        0.0
    };
    (slope, intercept, s)
}

pub fn linear(history: &[f64], horizon: usize) -> Result<Vec<Point>, String> {
    if history.len() < 3 {
        return Err(format!(
            "a linear forecast needs at least 3 months of history; there are {}",
            history.len()
        ));
    }
    let n = history.len() as f64;
    let (slope, intercept, s) = least_squares(history);
    let mean_x = (n - 1.0) / 2.0;
    let sxx: f64 = (0..history.len())
        .map(|i| (i as f64 - mean_x).powi(2))
        .sum();
    Ok((0..horizon)
        .map(|h| {
            let x = n + h as f64;
            let spread = s * (1.0 + 1.0 / n + (x - mean_x).powi(2) / sxx).sqrt();
            point(intercept + slope * x, spread)
        })
        .collect())
}

/// One-step errors and the final state of additive Holt-Winters.
fn holt_winters_fit(y: &[f64], alpha: f64, beta: f64, gamma: f64) -> (f64, f64, f64, Vec<f64>) {
    let first: f64 = y[..SEASON].iter().sum::<f64>() / SEASON as f64;
    let second: f64 = y[SEASON..2 * SEASON].iter().sum::<f64>() / SEASON as f64;
    let mut level = first;
    let mut trend = (second - first) / SEASON as f64;
    let mut season: Vec<f64> = y[..SEASON].iter().map(|v| v - first).collect();
    let mut sse = 0.0;
    for (t, value) in y.iter().enumerate().skip(SEASON) {
        let s = season[t % SEASON];
        let predicted = level + trend + s;
        sse += (value - predicted).powi(2);
        let previous_level = level;
        level = alpha * (value - s) + (1.0 - alpha) * (level + trend);
        trend = beta * (level - previous_level) + (1.0 - beta) * trend;
        season[t % SEASON] = gamma * (value - level) + (1.0 - gamma) * s;
    }
    (sse, level, trend, season)
}

pub fn holt_winters(history: &[f64], horizon: usize) -> Result<Vec<Point>, String> {
    if history.len() < 2 * SEASON {
        return Err(format!(
            "a Holt-Winters forecast needs two full years ({} months) of history; there are {}. \
             Use method linear instead",
            2 * SEASON,
            history.len()
        ));
    }
    let grid: Vec<f64> = (1..=9).map(|i| f64::from(i) / 10.0).collect();
    let mut best = (f64::INFINITY, 0.0, 0.0, 0.0);
    for &a in &grid {
        for &b in &grid {
            for &g in &grid {
                let (sse, ..) = holt_winters_fit(history, a, b, g);
                if sse < best.0 {
                    best = (sse, a, b, g);
                }
            }
        }
    }
    let (sse, alpha, beta, gamma) = best;
    let (_, level, trend, season) = holt_winters_fit(history, alpha, beta, gamma);
    let fitted = (history.len() - SEASON) as f64;
    let sigma = (sse / (fitted - 3.0).max(1.0)).sqrt();
    let n = history.len();
    Ok((1..=horizon)
        .map(|h| {
            let value = level + h as f64 * trend + season[(n + h - 1) % SEASON];
            point(value, sigma * (h as f64).sqrt())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_continued_exactly() {
        // y = 100 + 10x: slope 10, intercept 100, no residual, so no spread.
        let history = [100.0, 110.0, 120.0, 130.0];
        let forecast = linear(&history, 2).unwrap();
        assert!((forecast[0].value - 140.0).abs() < 1e-9);
        assert!((forecast[1].value - 150.0).abs() < 1e-9);
        assert!((forecast[1].upper_95 - 150.0).abs() < 1e-9);
    }

    #[test]
    fn linear_intervals_follow_the_formula() {
        // y = 1, 3, 2: mean x = 1, mean y = 2, Sxx = 2, Sxy = (-1)(-1) + 0 + (1)(0) = 1,
        // slope 0.5, intercept 1.5; fitted 1.5, 2, 2.5; residuals -0.5, 1, -0.5;
        // SSE 1.5, s = sqrt(1.5 / 1) = 1.2247. At x = 3: value 3.0 and
        // spread = s * sqrt(1 + 1/3 + (3 - 1)^2 / 2) = 1.2247 * sqrt(3.3333) = 2.2361.
        let p = &linear(&[1.0, 3.0, 2.0], 1).unwrap()[0];
        assert!((p.value - 3.0).abs() < 1e-9);
        let spread = 1.5f64.sqrt() * (1.0 + 1.0 / 3.0 + 2.0f64).sqrt();
        assert!((p.upper_95 - (3.0 + Z95 * spread)).abs() < 1e-9);
        assert!((p.upper_80 - (3.0 + Z80 * spread)).abs() < 1e-9);
        assert_eq!(p.lower_95, (3.0 - Z95 * spread).max(0.0));
    }

    #[test]
    fn short_histories_are_refused_with_the_reason() {
        assert!(
            linear(&[1.0, 2.0], 3)
                .unwrap_err()
                .contains("at least 3 months")
        );
        let err = holt_winters(&[1.0; 23], 3).unwrap_err();
        assert!(err.contains("24 months") && err.contains("there are 23"));
    }

    #[test]
    fn holt_winters_repeats_a_pure_season() {
        // The same 12 values every year, no trend: the forecast is that pattern.
        let pattern: Vec<f64> = (0..12).map(|m| 100.0 + 10.0 * f64::from(m % 4)).collect();
        let history: Vec<f64> = pattern
            .iter()
            .chain(&pattern)
            .chain(&pattern)
            .copied()
            .collect();
        let forecast = holt_winters(&history, 12).unwrap();
        for (h, p) in forecast.iter().enumerate() {
            assert!(
                (p.value - pattern[h]).abs() < 1e-6,
                "month {h}: {}",
                p.value
            );
            assert!(p.lower_95 <= p.value && p.value <= p.upper_95);
        }
    }
}
