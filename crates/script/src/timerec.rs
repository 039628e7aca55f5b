//! Time recurrences for `check_time_rec` (RFC 5545-style, OpenSIPS's
//! `dtstart|dtend|duration|freq|until|interval|byday|bymday|byyday|byweekno|bymonth`).

use crate::time::{days_from_civil, gmtime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freq {
    None,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// A parsed recurrence.
#[derive(Debug, Clone)]
pub(crate) struct TimeRec {
    start: i64,
    dur: i64,
    freq: Freq,
    until: Option<i64>,
    interval: i64,
    byday: Vec<u32>,
    bymday: Vec<i64>,
    bymonth: Vec<u32>,
}

/// Parses `YYYYMMDDThhmmss` (UTC).
fn parse_dt(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let num = |a: usize, n: usize| -> Result<i64, String> {
        s.get(a..a + n)
            .and_then(|x| x.parse::<i64>().ok())
            .ok_or_else(|| format!("bad date-time '{s}'"))
    };
    if b.len() < 8 {
        return Err(format!("bad date-time '{s}'"));
    }
    let (y, mo, d) = (num(0, 4)?, num(4, 2)?, num(6, 2)?);
    let (h, mi, se) = if b.len() >= 15 && b[8] == b'T' {
        (num(9, 2)?, num(11, 2)?, num(13, 2)?)
    } else {
        (0, 0, 0)
    };
    let days = days_from_civil(
        y,
        u32::try_from(mo).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    );
    Ok(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Parses an RFC 5545 duration like `P1D`, `PT2H30M`, `P1W`.
fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim_start_matches('P');
    let mut total = 0i64;
    let mut n = 0i64;
    let mut in_time = false;
    for c in t.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => n = n * 10 + i64::from(u32::from(c) - u32::from('0')),
            'W' => {
                total += n * 7 * 86_400;
                n = 0;
            }
            'D' => {
                total += n * 86_400;
                n = 0;
            }
            'H' if in_time => {
                total += n * 3600;
                n = 0;
            }
            'M' if in_time => {
                total += n * 60;
                n = 0;
            }
            'S' if in_time => {
                total += n;
                n = 0;
            }
            _ => return Err(format!("bad duration '{s}'")),
        }
    }
    Ok(total)
}

impl TimeRec {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let f: Vec<&str> = s.split('|').map(str::trim).collect();
        let get = |i: usize| f.get(i).copied().filter(|x| !x.is_empty());
        let start = parse_dt(get(0).ok_or("missing dtstart")?)?;
        let dur = match (get(1), get(2)) {
            (Some(e), _) => parse_dt(e)? - start,
            (None, Some(d)) => parse_duration(d)?,
            (None, None) => 86_400,
        };
        let freq = match get(3).map(str::to_ascii_lowercase).as_deref() {
            None => Freq::None,
            Some("daily") => Freq::Daily,
            Some("weekly") => Freq::Weekly,
            Some("monthly") => Freq::Monthly,
            Some("yearly") => Freq::Yearly,
            Some(o) => return Err(format!("bad frequency '{o}'")),
        };
        let until = get(4).map(parse_dt).transpose()?;
        let interval = get(5)
            .map(|x| x.parse::<i64>().map_err(|_| format!("bad interval '{x}'")))
            .transpose()?
            .unwrap_or(1)
            .max(1);
        let byday = match get(6) {
            Some(l) => l
                .split(',')
                .map(|d| {
                    let d = d.trim().to_ascii_uppercase();
                    let d =
                        d.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
                    ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
                        .iter()
                        .position(|x| *x == d)
                        .map(|p| u32::try_from(p).unwrap_or(0))
                        .ok_or_else(|| format!("bad day '{d}'"))
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let nums = |i: usize| -> Result<Vec<i64>, String> {
            match get(i) {
                Some(l) => l
                    .split(',')
                    .map(|x| {
                        x.trim()
                            .parse::<i64>()
                            .map_err(|_| format!("bad number '{x}'"))
                    })
                    .collect(),
                None => Ok(Vec::new()),
            }
        };
        let bymday = nums(7)?;
        let bymonth = nums(10)?
            .into_iter()
            .filter_map(|m| u32::try_from(m).ok())
            .collect();
        if dur <= 0 {
            return Err("dtend must be after dtstart".to_owned());
        }
        Ok(Self {
            start,
            dur,
            freq,
            until,
            interval,
            byday,
            bymday,
            bymonth,
        })
    }

    fn day_ok(&self, day: i64) -> bool {
        let d0 = self.start.div_euclid(86_400);
        if day < d0 {
            return false;
        }
        let tm = gmtime(day * 86_400);
        let tm0 = gmtime(self.start);
        let by_ok = (self.byday.is_empty() || self.byday.contains(&tm.wday))
            && (self.bymday.is_empty() || self.bymday.contains(&i64::from(tm.mday)))
            && (self.bymonth.is_empty() || self.bymonth.contains(&tm.mon));
        match self.freq {
            Freq::None => day == d0,
            Freq::Daily => (day - d0) % self.interval == 0 && by_ok,
            Freq::Weekly => {
                let weeks = (day - d0).div_euclid(7);
                weeks % self.interval == 0
                    && by_ok
                    && (!self.byday.is_empty() || tm.wday == tm0.wday)
            }
            Freq::Monthly => {
                let months = (tm.year - tm0.year) * 12 + i64::from(tm.mon) - i64::from(tm0.mon);
                months % self.interval == 0
                    && by_ok
                    && (!self.bymday.is_empty() || !self.byday.is_empty() || tm.mday == tm0.mday)
            }
            Freq::Yearly => {
                (tm.year - tm0.year) % self.interval == 0
                    && by_ok
                    && (!self.bymonth.is_empty() || tm.mon == tm0.mon)
                    && (!self.bymday.is_empty() || !self.byday.is_empty() || tm.mday == tm0.mday)
            }
        }
    }

    /// True when `t` (Unix seconds) falls inside an occurrence.
    pub(crate) fn matches(&self, t: i64) -> bool {
        let tod = self.start.rem_euclid(86_400);
        let back = self.dur / 86_400 + 1;
        let day = t.div_euclid(86_400);
        (0..=back).any(|k| {
            let d = day - k;
            let s = d * 86_400 + tod;
            s <= t
                && t < s + self.dur
                && s >= self.start
                && self.until.is_none_or(|u| s <= u)
                && self.day_ok(d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_business_hours() {
        // 09:00-17:00 Monday to Friday, starting 2024-01-01 (a Monday).
        let r = TimeRec::parse("20240101T090000|20240101T170000||weekly|||MO,TU,WE,TH,FR").unwrap();
        let mon_10 = parse_dt("20240108T100000").unwrap();
        let sat_10 = parse_dt("20240113T100000").unwrap();
        let mon_18 = parse_dt("20240108T180000").unwrap();
        assert!(r.matches(mon_10));
        assert!(!r.matches(sat_10));
        assert!(!r.matches(mon_18));
    }
}
