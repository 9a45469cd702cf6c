//! A rolling window of the last `n` values with O(1) mean/variance and sorted access.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Window {
    cap: usize,
    values: VecDeque<f64>,
    sorted: Vec<f64>,
    sum: f64,
}

impl Window {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Window {
            cap,
            values: VecDeque::with_capacity(cap + 1),
            sorted: Vec::with_capacity(cap + 1),
            sum: 0.0,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn push(&mut self, x: f64) {
        if self.values.len() == self.cap {
            if let Some(old) = self.values.pop_front() {
                self.sum -= old;
                if let Ok(i) = self.sorted.binary_search_by(|v| v.total_cmp(&old)) {
                    self.sorted.remove(i);
                }
            }
        }
        self.values.push_back(x);
        self.sum += x;
        let i = self.sorted.partition_point(|v| v.total_cmp(&x).is_lt());
        self.sorted.insert(i, x);
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.values.len().max(1) as f64
    }

    /// Population standard deviation, computed in two passes over the window: the
    /// running sums alone lose precision for large, nearly constant values.
    pub fn std(&self) -> f64 {
        let n = self.values.len();
        if n < 2 {
            return 0.0;
        }
        let mean = self.mean();
        let var = self
            .values
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum::<f64>()
            / n as f64;
        var.max(0.0).sqrt()
    }

    /// Linear-interpolated quantile (`q` in [0, 1]) of the window.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        let frac = pos - lo as f64;
        self.sorted[lo] + (self.sorted[hi.min(n - 1)] - self.sorted[lo]) * frac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_and_sorts() {
        let mut w = Window::new(3);
        for x in [5.0, 1.0, 3.0, 10.0] {
            w.push(x);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.mean(), 14.0 / 3.0);
        assert_eq!(w.quantile(0.0), 1.0);
        assert_eq!(w.quantile(0.5), 3.0);
        assert_eq!(w.quantile(1.0), 10.0);
        assert_eq!(w.quantile(0.25), 2.0);
        let mut c = Window::new(4);
        for _ in 0..4 {
            c.push(7.0);
        }
        assert_eq!(c.std(), 0.0);
    }
}
