//! A zip archive written front to back, as PKWARE's APPNOTE.TXT (6.3.10)
//! describes it: stored (uncompressed) entries, each with the CRC-32 of its
//! bytes; the central directory spooled to a scratch file as entries are
//! added, so memory does not grow with their number; and the Zip64 end
//! records (APPNOTE 4.3.14, 4.3.15) and extra field (4.5.3) once the count
//! of entries or an offset or size passes what the classic records hold.
//!
//! Stored, not deflated: candor has no deflate encoder in its lock file,
//! and every zip reader (Python's `zipfile`, Inspect's own reader, `unzip`)
//! reads stored entries.

use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
/// Bit 11: names are UTF-8.
const FLAGS: u16 = 0x0800;
const STORED: u16 = 0;
const VERSION: u16 = 20;
const VERSION64: u16 = 45;
/// Made by Unix (3), APPNOTE 4.5, so that `external` below reads as a mode.
const MADE_BY: u16 = (3 << 8) | VERSION64;
/// A regular file, rw-r--r--.
const EXTERNAL: u32 = 0o100_644 << 16;
const MAX16: u64 = 0xFFFF;
const MAX32: u64 = 0xFFFF_FFFF;

/// A time as zip headers store it (MS-DOS date and time, 2-second steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosTime {
    pub time: u16,
    pub date: u16,
}

impl DosTime {
    /// The time of `unix_secs` (UTC).
    pub fn of(unix_secs: u64) -> DosTime {
        let (y, m, d) = candor_core::time::civil((unix_secs / 86_400) as i64);
        let rem = unix_secs % 86_400;
        DosTime::at(y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
    }

    /// The time of an RFC 3339 time as candor writes them (`YYYY-MM-DDTHH:MM:SS…`).
    pub fn parse(t: &str) -> Option<DosTime> {
        let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
        let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
        let (h, min, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
        let valid = (1..=12).contains(&m) && (1..=31).contains(&d) && h < 24 && min < 60 && s < 61;
        valid.then(|| DosTime::at(i64::from(y), m, d, u64::from(h), u64::from(min), u64::from(s)))
    }

    /// Times before 1980, which the format cannot hold, read as 1980-01-01.
    fn at(y: i64, m: u32, d: u32, h: u64, min: u64, s: u64) -> DosTime {
        if y < 1980 {
            return DosTime {
                time: 0,
                date: (1 << 5) | 1,
            };
        }
        DosTime {
            time: ((h << 11) | (min << 5) | (s.min(59) / 2)) as u16,
            date: ((((y - 1980).min(127) as u32) << 9) | (m << 5) | d) as u16,
        }
    }
}

/// Bytes written to a scratch file as they come, with their CRC-32 and
/// length, to become one entry later (`ZipWriter::add_spool`).
pub struct Spool<F: Write> {
    w: BufWriter<F>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<F: Write> Spool<F> {
    pub fn new(file: F) -> Spool<F> {
        Spool {
            w: BufWriter::with_capacity(64 << 10, file),
            crc: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Flushes and rewinds the file: returns the CRC-32 and length of what
    /// was written.
    fn rewind(&mut self) -> io::Result<(u32, u64)>
    where
        F: Seek,
    {
        self.w.flush()?;
        self.w.get_mut().seek(SeekFrom::Start(0))?;
        Ok((self.crc.clone().finalize(), self.len))
    }

    /// What was written, read from the start of the file.
    pub fn reader(&mut self) -> io::Result<impl Read + '_>
    where
        F: Read + Seek,
    {
        let (_, len) = self.rewind()?;
        Ok(self.w.get_mut().take(len))
    }
}

impl<F: Write> Write for Spool<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// One entry as the central directory records it.
struct Record<'a> {
    name: &'a str,
    crc: u32,
    size: u64,
    offset: u64,
}

/// A zip archive being written to `out`, its central directory spooled to
/// `cd` (a scratch file) until `finish`.
pub struct ZipWriter<W: Write, S: Read + Write + Seek> {
    out: W,
    /// Bytes written to `out`: the next local header's offset.
    offset: u64,
    cd: Spool<S>,
    entries: u64,
    modified: DosTime,
}

impl<W: Write, S: Read + Write + Seek> ZipWriter<W, S> {
    /// An empty archive; every entry gets `modified` as its time.
    pub fn new(out: W, cd: S, modified: DosTime) -> Self {
        ZipWriter {
            out,
            offset: 0,
            cd: Spool::new(cd),
            entries: 0,
            modified,
        }
    }

    /// Adds an entry whose bytes are in memory.
    pub fn add(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let crc = crc32fast::hash(data);
        self.header(name, crc, data.len() as u64)?;
        self.out.write_all(data)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Adds an entry holding what was written to `spool`, copied from its file.
    pub fn add_spool<F: Read + Write + Seek>(&mut self, name: &str, spool: &mut Spool<F>) -> io::Result<()> {
        let (crc, size) = spool.rewind()?;
        self.header(name, crc, size)?;
        let copied = io::copy(&mut spool.w.get_mut().take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("zip entry {name}: its scratch file holds {copied} of {size} bytes"),
            ));
        }
        self.offset += size;
        Ok(())
    }

    /// Writes an entry's local header and its central directory record.
    fn header(&mut self, name: &str, crc: u32, size: u64) -> io::Result<()> {
        if name.len() > MAX16 as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "zip entry name longer than 65535 bytes",
            ));
        }
        let r = Record {
            name,
            crc,
            size,
            offset: self.offset,
        };
        let local = local_header(&r, self.modified);
        self.out.write_all(&local)?;
        self.offset += local.len() as u64;
        self.cd.write_all(&central_header(&r, self.modified))?;
        self.entries += 1;
        Ok(())
    }

    /// Writes the central directory and the end records; returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        let cd_offset = self.offset;
        let (_, cd_size) = self.cd.rewind()?;
        let copied = io::copy(&mut self.cd.w.get_mut().take(cd_size), &mut self.out)?;
        if copied != cd_size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "zip central directory: its scratch file was cut short",
            ));
        }
        let end64_offset = cd_offset + cd_size;
        let n = self.entries;
        let mut b = Vec::with_capacity(98);
        if n >= MAX16 || cd_size >= MAX32 || cd_offset >= MAX32 {
            put32(&mut b, END64);
            put64(&mut b, 44); // the size of the rest of this record
            put16(&mut b, MADE_BY);
            put16(&mut b, VERSION64);
            put32(&mut b, 0); // this disk
            put32(&mut b, 0); // the disk the central directory starts on
            put64(&mut b, n);
            put64(&mut b, n);
            put64(&mut b, cd_size);
            put64(&mut b, cd_offset);
            put32(&mut b, LOCATOR64);
            put32(&mut b, 0);
            put64(&mut b, end64_offset);
            put32(&mut b, 1); // disks
        }
        put32(&mut b, END);
        put16(&mut b, 0);
        put16(&mut b, 0);
        put16(&mut b, n.min(MAX16) as u16);
        put16(&mut b, n.min(MAX16) as u16);
        put32(&mut b, cd_size.min(MAX32) as u32);
        put32(&mut b, cd_offset.min(MAX32) as u32);
        put16(&mut b, 0); // comment length
        self.out.write_all(&b)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn local_header(r: &Record, t: DosTime) -> Vec<u8> {
    let big = r.size >= MAX32;
    let mut b = Vec::with_capacity(30 + r.name.len() + 20);
    put32(&mut b, LOCAL);
    put16(&mut b, if big { VERSION64 } else { VERSION });
    put16(&mut b, FLAGS);
    put16(&mut b, STORED);
    put16(&mut b, t.time);
    put16(&mut b, t.date);
    put32(&mut b, r.crc);
    let size32 = r.size.min(MAX32) as u32;
    put32(&mut b, size32); // compressed
    put32(&mut b, size32); // uncompressed
    put16(&mut b, r.name.len() as u16);
    put16(&mut b, if big { 20 } else { 0 });
    b.extend_from_slice(r.name.as_bytes());
    if big {
        put16(&mut b, 0x0001);
        put16(&mut b, 16);
        put64(&mut b, r.size);
        put64(&mut b, r.size);
    }
    b
}

fn central_header(r: &Record, t: DosTime) -> Vec<u8> {
    // The Zip64 extra field holds, in this order, only the fields that overflow.
    let mut extra = Vec::new();
    if r.size >= MAX32 {
        put64(&mut extra, r.size); // uncompressed
        put64(&mut extra, r.size); // compressed
    }
    if r.offset >= MAX32 {
        put64(&mut extra, r.offset);
    }
    let mut b = Vec::with_capacity(46 + r.name.len() + 4 + extra.len());
    put32(&mut b, CENTRAL);
    put16(&mut b, MADE_BY);
    put16(&mut b, if extra.is_empty() { VERSION } else { VERSION64 });
    put16(&mut b, FLAGS);
    put16(&mut b, STORED);
    put16(&mut b, t.time);
    put16(&mut b, t.date);
    put32(&mut b, r.crc);
    let size32 = r.size.min(MAX32) as u32;
    put32(&mut b, size32);
    put32(&mut b, size32);
    put16(&mut b, r.name.len() as u16);
    put16(&mut b, if extra.is_empty() { 0 } else { 4 + extra.len() as u16 });
    put16(&mut b, 0); // comment length
    put16(&mut b, 0); // disk
    put16(&mut b, 0); // internal attributes
    put32(&mut b, EXTERNAL);
    put32(&mut b, r.offset.min(MAX32) as u32);
    b.extend_from_slice(r.name.as_bytes());
    if !extra.is_empty() {
        put16(&mut b, 0x0001);
        put16(&mut b, extra.len() as u16);
        b.extend_from_slice(&extra);
    }
    b
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    /// What a reader finds: each entry's name, bytes and whether its stored
    /// CRC-32 matches them, found through the end record and the central
    /// directory as readers do (Zip64 when the end record says so).
    pub(in crate::inspect) fn read(zip: &[u8]) -> Vec<(String, Vec<u8>, bool)> {
        let u16_at = |i: usize| u16::from_le_bytes(zip[i..i + 2].try_into().unwrap()) as u64;
        let u32_at = |i: usize| u32::from_le_bytes(zip[i..i + 4].try_into().unwrap()) as u64;
        let u64_at = |i: usize| u64::from_le_bytes(zip[i..i + 8].try_into().unwrap());
        let end = zip.len() - 22;
        assert_eq!(u32_at(end), END as u64, "no end record where it belongs");
        let (mut n, mut cd) = (u16_at(end + 10), u32_at(end + 16));
        if n == MAX16 || cd == MAX32 {
            let loc = end - 20;
            assert_eq!(u32_at(loc), LOCATOR64 as u64);
            let e64 = u64_at(loc + 8) as usize;
            assert_eq!(u32_at(e64), END64 as u64);
            (n, cd) = (u64_at(e64 + 32), u64_at(e64 + 48));
        }
        let mut out = Vec::new();
        let mut p = cd as usize;
        for _ in 0..n {
            assert_eq!(u32_at(p), CENTRAL as u64);
            let (crc, size, name_len, extra_len) = (u32_at(p + 16), u32_at(p + 24), u16_at(p + 28), u16_at(p + 30));
            let mut offset = u32_at(p + 42);
            let name = String::from_utf8(zip[p + 46..p + 46 + name_len as usize].to_vec()).unwrap();
            if offset == MAX32 {
                let x = p + 46 + name_len as usize;
                assert_eq!(u16_at(x), 1, "a Zip64 extra field");
                offset = u64_at(x + 4);
            }
            let o = offset as usize;
            assert_eq!(u32_at(o), LOCAL as u64, "{name}: no local header at its offset");
            let data_at = o + 30 + u16_at(o + 26) as usize + u16_at(o + 28) as usize;
            let data = zip[data_at..data_at + size as usize].to_vec();
            let ok = crc32fast::hash(&data) as u64 == crc && u32_at(o + 14) == crc;
            out.push((name, data, ok));
            p += 46 + name_len as usize + extra_len as usize;
        }
        out
    }

    fn zip_of(f: impl FnOnce(&mut ZipWriter<Vec<u8>, Cursor<Vec<u8>>>)) -> Vec<u8> {
        let mut z = ZipWriter::new(Vec::new(), Cursor::new(Vec::new()), DosTime::of(1_796_619_429));
        f(&mut z);
        z.finish().unwrap()
    }

    #[test]
    fn entries_read_back_with_their_crc_from_memory_and_from_a_spool() {
        let zip = zip_of(|z| {
            z.add("header.json", b"{\"version\": 2}").unwrap();
            z.add("samples/é_epoch_1.json", b"").unwrap();
            let mut s = Spool::new(Cursor::new(Vec::new()));
            for i in 0..10_000 {
                write!(s, "{i},").unwrap();
            }
            assert_eq!(s.len(), 48_890);
            z.add_spool("summaries.json", &mut s).unwrap();
        });
        let entries = read(&zip);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["header.json", "samples/é_epoch_1.json", "summaries.json"]);
        assert!(entries.iter().all(|e| e.2), "a CRC-32 does not match its bytes");
        assert_eq!(entries[0].1, b"{\"version\": 2}");
        assert!(entries[1].1.is_empty());
        let text = String::from_utf8(entries[2].1.clone()).unwrap();
        assert!(
            text.starts_with("0,1,2,") && text.ends_with("9998,9999,"),
            "{}",
            &text[..20]
        );
        // The UTF-8 flag is set, so readers decode the name as UTF-8.
        assert_eq!(u16::from_le_bytes([zip[6], zip[7]]) & 0x0800, 0x0800);
    }

    #[test]
    fn the_crc_is_the_standard_crc_32() {
        // "123456789" has the check value 0xCBF43926 (ISO-HDLC CRC-32).
        let zip = zip_of(|z| z.add("check", b"123456789").unwrap());
        assert_eq!(&zip[14..18], &0xCBF4_3926u32.to_le_bytes());
        assert_eq!(read(&zip)[0].1, b"123456789");
    }

    #[test]
    fn more_entries_than_the_classic_end_record_counts_take_zip64_end_records() {
        let n = 70_000u64;
        let zip = zip_of(|z| {
            for i in 0..n {
                z.add(&format!("samples/{i}_epoch_1.json"), i.to_string().as_bytes())
                    .unwrap();
            }
        });
        let end = zip.len() - 22;
        assert_eq!(&zip[end + 8..end + 12], &[0xFF; 4], "the classic count says: see Zip64");
        let entries = read(&zip);
        assert_eq!(entries.len() as u64, n);
        assert!(entries.iter().all(|e| e.2));
        assert_eq!(entries[69_999].0, "samples/69999_epoch_1.json");
        assert_eq!(entries[69_999].1, b"69999");
    }

    #[test]
    fn a_small_archive_has_no_zip64_records() {
        let zip = zip_of(|z| z.add("a", b"x").unwrap());
        assert!(!zip.windows(4).any(|w| w == END64.to_le_bytes()));
        assert_eq!(read(&zip).len(), 1);
    }

    #[test]
    fn dos_times_are_the_calendars_in_two_second_steps() {
        // 2026-12-07T04:57:09Z
        let t = DosTime::of(1_796_619_429);
        assert_eq!(t.date, ((2026 - 1980) << 9) | (12 << 5) | 7);
        assert_eq!(t.time, (4 << 11) | (57 << 5) | 4);
        assert_eq!(DosTime::parse("2026-12-07T04:57:09Z"), Some(t));
        assert_eq!(DosTime::parse("2026-12-07T04:57:09.429Z"), Some(t));
        assert_eq!(DosTime::parse("yesterday"), None);
        assert_eq!(DosTime::of(0), DosTime { time: 0, date: 33 });
    }
}
