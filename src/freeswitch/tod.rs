//! Time-of-day conditions as FreeSWITCH 1.10.12 evaluates them: `switch_xml_std_datetime_check`
//! (switch_xml.c:3138) with `switch_number_cmp`, `switch_dow_cmp`, `switch_tod_cmp` and
//! `switch_fulldate_cmp` (switch_utils.c:4005, 3972, 4024, 3611), over one wall-clock time.
//!
//! Why a wall-clock time and not an instant: FreeSWITCH compares the PBX's local time
//! (`localtime`), and `route --conf` on a copied tree cannot know the PBX's time zone. The
//! operator gives the PBX's local time (`--at`), or `route` takes this machine's, and says
//! which. Conditions that name another zone (`tz-offset`, `dst`, the `timezone` or
//! `tod_tz_offset` variables) are reported as not evaluated.

/// One local wall-clock time, broken down as `struct tm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub year: i32,
    /// 1-12.
    pub mon: u32,
    /// 1-31.
    pub mday: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 = Sunday (tm_wday).
    pub wday: u32,
    /// 0-365 (tm_yday).
    pub yday: u32,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl At {
    /// From a civil date and time; `None` when the date does not exist.
    pub fn new(year: i32, mon: u32, mday: u32, hour: u32, min: u32, sec: u32) -> Option<At> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let dim = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&mon)
            || mday == 0
            || mday > dim[mon as usize - 1]
            || hour > 23
            || min > 59
            || sec > 60
        {
            return None;
        }
        let days = days_from_civil(year, mon, mday);
        Some(At {
            year,
            mon,
            mday,
            hour,
            min,
            sec,
            wday: (days + 4).rem_euclid(7) as u32,
            yday: (days - days_from_civil(year, 1, 1)) as u32,
        })
    }

    /// `YYYY-MM-DD HH:MM[:SS]` (or with `T`), as `--at` and `date-time=` write it.
    pub fn parse(s: &str) -> Option<At> {
        let s = s.trim();
        let (date, time) = s.split_once(['T', ' '])?;
        let mut d = date.split('-');
        let (y, m, dd) = (d.next()?, d.next()?, d.next()?);
        if d.next().is_some() {
            return None;
        }
        let mut t = time.trim().split(':');
        let (h, mi) = (t.next()?, t.next()?);
        let sec = t.next().unwrap_or("0");
        if t.next().is_some() {
            return None;
        }
        At::new(
            y.parse().ok()?,
            m.parse().ok()?,
            dd.parse().ok()?,
            h.parse().ok()?,
            mi.parse().ok()?,
            sec.parse().ok()?,
        )
    }

    /// This machine's local time now (the PBX's, when `route` runs on it).
    pub fn now_local() -> At {
        use chrono::{Datelike, Timelike};
        let n = chrono::Local::now().naive_local();
        At::new(
            n.year(),
            n.month(),
            n.day(),
            n.hour(),
            n.minute(),
            n.second().min(59),
        )
        .expect("a valid local time")
    }

    /// Seconds of the civil time, for ordering `date-time` ranges.
    fn stamp(&self) -> i64 {
        days_from_civil(self.year, self.mon, self.mday) * 86_400
            + i64::from(self.hour * 3600 + self.min * 60 + self.sec)
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const DOW: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} ({})",
            self.year, self.mon, self.mday, self.hour, self.min, self.sec, DOW[self.wday as usize]
        )
    }
}

/// The time attributes a condition may carry (switch_xml.c:3140-3153).
pub const ATTRS: &[&str] = &[
    "date-time",
    "year",
    "yday",
    "mon",
    "mday",
    "week",
    "mweek",
    "wday",
    "hour",
    "minute",
    "minute-of-day",
    "time-of-day",
    "tz-offset",
    "dst",
];

/// `switch_xml_std_datetime_check` at `at`: `-1` no time attribute, `1` match, `0` no
/// match; `Err` for what depends on a zone other than the wall clock given.
pub fn check(attr: &dyn Fn(&str) -> Option<String>, at: &At) -> Result<i32, String> {
    if let Some(a) = ["tz-offset", "dst"].into_iter().find(|a| attr(a).is_some()) {
        return Err(format!(
            "a `{a}` time condition compares the PBX's zone, which a conf tree does not say"
        ));
    }
    let mut m = -1;
    let mut test = |name: &str, f: &dyn Fn(&str) -> bool| {
        if m != 0 {
            if let Some(v) = attr(name) {
                m = i32::from(f(&v));
            }
        }
    };
    test("date-time", &|v| fulldate_cmp(v, at));
    test("year", &|v| number_cmp(v, at.year as i64));
    test("yday", &|v| number_cmp(v, i64::from(at.yday) + 1));
    test("mon", &|v| number_cmp(v, i64::from(at.mon)));
    test("mday", &|v| number_cmp(v, i64::from(at.mday)));
    test("week", &|v| number_cmp(v, i64::from(at.yday / 7 + 1)));
    test("mweek", &|v| {
        // switch_xml.c:3250: day of week of the 1st, then ceil((mday + firstdow) / 7).
        let (mday, wday) = (at.mday as i64, at.wday as i64);
        let firstdow = (7 - (mday - (wday + 1)) % 7) % 7;
        let week = (mday + firstdow + 6).div_euclid(7);
        number_cmp(v, week)
    });
    test("wday", &|v| dow_cmp(v, i64::from(at.wday) + 1));
    test("hour", &|v| number_cmp(v, i64::from(at.hour)));
    test("minute", &|v| number_cmp(v, i64::from(at.min)));
    test("minute-of-day", &|v| {
        number_cmp(v, i64::from(at.hour * 60 + at.min + 1))
    });
    test("time-of-day", &|v| {
        tod_cmp(v, i64::from(at.hour * 3600 + at.min * 60 + at.sec))
    });
    Ok(m)
}

/// `strtol` from the start of `s`: the number (0 when none) and the rest.
fn strtol(s: &str) -> (i64, &str) {
    let t = s.trim_start();
    let (sign, body) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    if end == 0 {
        return (0, s);
    }
    (
        sign * body[..end].parse::<i64>().unwrap_or(i64::MAX),
        &body[end..],
    )
}

/// switch_number_cmp: `N`, `A-B` (reversed wraps), comma-separated.
pub fn number_cmp(exp: &str, val: i64) -> bool {
    let mut exp = exp;
    loop {
        let (a, rest) = strtol(exp);
        exp = rest;
        if let Some(r) = exp.strip_prefix('-') {
            let (b, rest) = strtol(r);
            exp = rest;
            if if a <= b {
                val >= a && val <= b
            } else {
                val >= a || val <= b
            } {
                return true;
            }
        } else if a == val {
            return true;
        }
        match exp.strip_prefix(',') {
            Some(r) => exp = r,
            None => return false,
        }
    }
}

/// switch_dow_cmp: days 1-7 or `sun`..`sat`, ranges (wrapping) and commas; 1 = Sunday.
pub fn dow_cmp(exp: &str, val: i64) -> bool {
    const DOW: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let b = exp.as_bytes();
    let mut i = 0;
    let (mut prev, mut start): (Option<i64>, Option<i64>) = (None, None);
    while i < b.len() {
        let cur: Option<i64>;
        match b[i] {
            b'-' => {
                i += 1;
                start = prev;
                prev = None;
                continue;
            }
            b',' => {
                i += 1;
                prev = None;
                continue;
            }
            c @ b'1'..=b'7' => {
                i += 1;
                cur = Some(i64::from(c - b'0'));
            }
            _ => {
                let word = exp.get(i..i + 3).map(str::to_ascii_lowercase);
                match word.and_then(|w| DOW.iter().position(|d| *d == w)) {
                    Some(p) => {
                        i += 3;
                        cur = Some(p as i64 + 1);
                    }
                    None => return false, // parse error: FreeSWITCH logs it, no match
                }
            }
        }
        let c = cur.expect("set above");
        if let Some(s) = start.take() {
            if if s <= c {
                val >= s && val <= c
            } else {
                val >= s || val <= c
            } {
                return true;
            }
        } else if val == c {
            return true;
        }
        prev = Some(c);
    }
    false
}

/// switch_tod_cmp: `HH:MM[:SS]-HH:MM[:SS]` ranges (wrapping), comma-separated.
pub fn tod_cmp(exp: &str, val: i64) -> bool {
    let atol = |s: &str| strtol(s).0;
    for cur in exp.split(',') {
        let Some((minh, rest)) = cur.split_once(':') else {
            continue;
        };
        let Some((minpart, maxpart)) = rest.split_once('-') else {
            continue;
        };
        let Some((maxh, maxrest)) = maxpart.split_once(':') else {
            continue;
        };
        let (minm, mins) = minpart.split_once(':').unwrap_or((minpart, "00"));
        let (maxm, maxs) = maxrest.split_once(':').unwrap_or((maxrest, "00"));
        let s = atol(minh) * 3600 + atol(minm) * 60 + atol(mins);
        let e = atol(maxh) * 3600 + atol(maxm) * 60 + atol(maxs);
        if if s <= e {
            val >= s && val <= e
        } else {
            val >= s || val <= e
        } {
            return true;
        }
    }
    false
}

/// switch_fulldate_cmp: `START~END` ranges of `YYYY-MM-DD HH:MM[:SS]`, comma-separated,
/// start included, end excluded; a range that does not parse stops the comparison.
pub fn fulldate_cmp(exp: &str, at: &At) -> bool {
    let t = at.stamp();
    for cur in exp.split(',') {
        if let Some((s, e)) = cur.split_once('~') {
            let (Some(s), Some(e)) = (At::parse(s), At::parse(e)) else {
                return false;
            };
            if s.stamp() <= t && e.stamp() > t {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_as_switch_utils_c() {
        let at = At::parse("2026-01-12 10:30").unwrap(); // a Monday
        assert_eq!(at.wday, 1);
        assert_eq!(at.yday, 11);
        assert!(dow_cmp("2-6", 2) && !dow_cmp("2-6", 1) && dow_cmp("mon-fri", 2));
        assert!(dow_cmp("6-2", 1) && dow_cmp("sat,sun", 7));
        assert!(number_cmp("9-18", 18) && !number_cmp("9-18", 19) && number_cmp("18-8", 3));
        assert!(number_cmp("1,5,7-9", 8) && !number_cmp("1,5,7-9", 6));
        assert!(tod_cmp("09:00-17:30", 10 * 3600) && !tod_cmp("09:00-17:30", 18 * 3600));
        assert!(tod_cmp("22:00-06:00", 3600));
        let attrs = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
        };
        // The stock holiday_example's Martin Luther King Day (wday=2 mweek=3 mon=1): mweek
        // counts calendar rows from the 1st (a Thursday in 2026), so FreeSWITCH closes on
        // the 2nd Monday, the 12th, and is open on the real holiday, the 19th.
        let mlk = attrs(&[("wday", "2"), ("mweek", "3"), ("mon", "1")]);
        assert_eq!(check(&mlk, &at), Ok(1));
        let holiday = At::parse("2026-01-19 10:30").unwrap();
        assert_eq!(check(&mlk, &holiday), Ok(0));
        assert_eq!(check(&attrs(&[]), &at), Ok(-1));
        let tod = attrs(&[("wday", "2-6"), ("hour", "9-18")]);
        assert_eq!(check(&tod, &at), Ok(1));
        assert_eq!(check(&tod, &At::parse("2026-01-18 10:30").unwrap()), Ok(0));
        let dt = attrs(&[("date-time", "2026-01-01 00:00~2026-01-12 10:30")]);
        assert_eq!(check(&dt, &at), Ok(0), "the end is excluded");
        assert!(check(&attrs(&[("tz-offset", "-5")]), &at).is_err());
        assert_eq!(
            check(&attrs(&[("minute-of-day", "631")]), &at),
            Ok(1),
            "minute-of-day counts from 1"
        );
    }
}
