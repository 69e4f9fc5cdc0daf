//! TEMP stub
#[derive(Default)]
pub struct HeadScanner;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError;
impl std::fmt::Display for HttpError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "x") } }
impl HeadScanner { pub fn scan(&mut self, _b: &[u8], _m: usize) -> Result<Option<usize>, HttpError> { todo!() } pub fn reset(&mut self) {} }
