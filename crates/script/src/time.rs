//! Calendar helpers for `$time`, `$Tf`, `$ctime` and `check_time_rec` (UTC).

use std::io::Write as _;

use crate::program::CtimePart;

/// Broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tm {
    pub(crate) year: i64,
    pub(crate) mon: u32,
    pub(crate) mday: u32,
    pub(crate) hour: u32,
    pub(crate) min: u32,
    pub(crate) sec: u32,
    pub(crate) wday: u32,
    pub(crate) yday: u32,
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
pub(crate) fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn gmtime(t: i64) -> Tm {
    let days = t.div_euclid(86_400);
    let secs = u32::try_from(t.rem_euclid(86_400)).unwrap_or(0);
    let (year, mon, mday) = civil(days);
    let yday = u32::try_from(days - days_from_civil(year, 1, 1)).unwrap_or(0);
    Tm {
        year,
        mon,
        mday,
        hour: secs / 3600,
        min: secs / 60 % 60,
        sec: secs % 60,
        wday: u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
        yday,
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A subset of `strftime` (UTC): `%a %A %b %B %c %d %D %e %F %H %I %j %m %M %p %s %S %T %u %w %y %Y %Z %z %%`.
pub(crate) fn strftime(t: i64, fmt: &str, out: &mut Vec<u8>) {
    let tm = gmtime(t);
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        let Some(f) = it.next() else {
            out.push(b'%');
            break;
        };
        let day = DAYS[tm.wday as usize % 7];
        let mon = MONTHS[(tm.mon as usize + 11) % 12];
        let _ = match f {
            'a' => write!(out, "{}", &day[..3]),
            'A' => write!(out, "{day}"),
            'b' | 'h' => write!(out, "{}", &mon[..3]),
            'B' => write!(out, "{mon}"),
            'c' => write!(
                out,
                "{} {} {:>2} {:02}:{:02}:{:02} {}",
                &day[..3],
                &mon[..3],
                tm.mday,
                tm.hour,
                tm.min,
                tm.sec,
                tm.year
            ),
            'd' => write!(out, "{:02}", tm.mday),
            'D' => write!(
                out,
                "{:02}/{:02}/{:02}",
                tm.mon,
                tm.mday,
                tm.year.rem_euclid(100)
            ),
            'e' => write!(out, "{:>2}", tm.mday),
            'F' => write!(out, "{}-{:02}-{:02}", tm.year, tm.mon, tm.mday),
            'H' => write!(out, "{:02}", tm.hour),
            'I' => write!(out, "{:02}", (tm.hour + 11) % 12 + 1),
            'j' => write!(out, "{:03}", tm.yday + 1),
            'm' => write!(out, "{:02}", tm.mon),
            'M' => write!(out, "{:02}", tm.min),
            'p' => write!(out, "{}", if tm.hour < 12 { "AM" } else { "PM" }),
            's' => write!(out, "{t}"),
            'S' => write!(out, "{:02}", tm.sec),
            'T' => write!(out, "{:02}:{:02}:{:02}", tm.hour, tm.min, tm.sec),
            'u' => write!(out, "{}", if tm.wday == 0 { 7 } else { tm.wday }),
            'w' => write!(out, "{}", tm.wday),
            'y' => write!(out, "{:02}", tm.year.rem_euclid(100)),
            'Y' => write!(out, "{}", tm.year),
            'Z' => write!(out, "UTC"),
            'z' => write!(out, "+0000"),
            '%' => write!(out, "%"),
            other => write!(out, "%{other}"),
        };
    }
}

pub(crate) fn ctime_part(t: i64, p: CtimePart) -> i64 {
    let tm = gmtime(t);
    i64::from(match p {
        CtimePart::Sec => tm.sec,
        CtimePart::Min => tm.min,
        CtimePart::Hour => tm.hour,
        CtimePart::Mday => tm.mday,
        CtimePart::Mon => tm.mon,
        CtimePart::Year => return tm.year,
        CtimePart::Wday => tm.wday + 1,
        CtimePart::Yday => tm.yday + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        let tm = gmtime(1_700_000_000);
        assert_eq!(
            (tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec),
            (2023, 11, 14, 22, 13, 20)
        );
        assert_eq!(tm.wday, 2);
        let mut o = Vec::new();
        strftime(1_700_000_000, "%Y-%m-%d %H:%M:%S %a", &mut o);
        assert_eq!(o, b"2023-11-14 22:13:20 Tue");
        assert!(is_leap(2024));
    }
}
