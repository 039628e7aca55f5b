//! Source files, spans and the map from byte offsets to `file:line:col`.

use std::path::PathBuf;

/// Index of a file registered in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// The file the range belongs to.
    pub file: FileId,
    /// Start byte offset (inclusive).
    pub start: u32,
    /// End byte offset (exclusive).
    pub end: u32,
}

impl Span {
    /// Builds a span.
    pub fn new(file: FileId, start: u32, end: u32) -> Self {
        Self { file, start, end }
    }

    /// The smallest span covering `self` and `other` (when both are in the same file).
    pub fn to(self, other: Self) -> Self {
        if self.file != other.file {
            return self;
        }
        Self {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// One loaded source text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Display name (the path as given, or a synthetic name).
    pub name: String,
    /// Path on disk, when the text came from a file.
    pub path: Option<PathBuf>,
    /// Full text.
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    fn new(name: String, path: Option<PathBuf>, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            name,
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (column counted in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts[line_idx];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line_idx + 1, col + 1)
    }

    /// Text of a 1-based line, without its line terminator.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }
}

/// Every source text seen while parsing one configuration (main file, included files,
/// preprocessor output); turns [`Span`]s into human positions.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

/// A resolved position: file name, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File display name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a text and returns its id.
    pub fn add(&mut self, name: impl Into<String>, path: Option<PathBuf>, text: String) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile::new(name.into(), path, text));
        id
    }

    /// The file behind an id.
    pub fn file(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    /// All registered files, in registration order.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// Resolves the start of a span.
    pub fn location(&self, span: Span) -> Location {
        match self.file(span.file) {
            Some(f) => {
                let (line, col) = f.line_col(span.start as usize);
                Location {
                    file: f.name.clone(),
                    line,
                    col,
                }
            }
            None => Location {
                file: "<unknown>".to_owned(),
                line: 0,
                col: 0,
            },
        }
    }

    /// The source text covered by a span (empty when out of range).
    pub fn snippet(&self, span: Span) -> &str {
        self.file(span.file)
            .and_then(|f| f.text.get(span.start as usize..span.end as usize))
            .unwrap_or("")
    }
}

/// A contiguous piece of the flattened input that comes from one file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub(crate) flat_start: usize,
    pub(crate) len: usize,
    pub(crate) file: FileId,
    pub(crate) file_start: usize,
}

/// The text the lexer runs over: files with `include_file` lines replaced by the included
/// text, plus the map back to the original files.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flat {
    pub(crate) text: String,
    pub(crate) segments: Vec<Segment>,
    /// File used for offsets outside every segment (end of input).
    pub(crate) fallback: FileId,
}

impl Flat {
    pub(crate) fn single(file: FileId, text: String) -> Self {
        let len = text.len();
        Self {
            text,
            segments: vec![Segment {
                flat_start: 0,
                len,
                file,
                file_start: 0,
            }],
            fallback: file,
        }
    }

    pub(crate) fn push(&mut self, file: FileId, file_start: usize, piece: &str) {
        if piece.is_empty() {
            return;
        }
        self.segments.push(Segment {
            flat_start: self.text.len(),
            len: piece.len(),
            file,
            file_start,
        });
        self.text.push_str(piece);
    }

    fn locate(&self, flat: usize) -> (FileId, usize) {
        let idx = match self.segments.binary_search_by(|s| s.flat_start.cmp(&flat)) {
            Ok(i) => i,
            Err(0) => {
                return (self.fallback, 0);
            }
            Err(i) => i - 1,
        };
        let seg = self.segments[idx];
        let rel = (flat - seg.flat_start).min(seg.len);
        (seg.file, seg.file_start + rel)
    }

    /// Maps a flat byte range to a file span (the end is clamped to the start's file).
    pub(crate) fn span(&self, lo: usize, hi: usize) -> Span {
        let (file, start) = self.locate(lo);
        let (file2, end) = if hi > lo {
            self.locate(hi - 1)
        } else {
            (file, start)
        };
        let end = if file2 == file && end >= start {
            if hi > lo { end + 1 } else { end }
        } else {
            start + 1
        };
        let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Span::new(file, to_u32(start), to_u32(end))
    }
}
