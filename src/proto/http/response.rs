//! TEMP stub
pub fn write_response(_s: u16, _e: &[(&str, &str)], _c: &str, _b: &[u8], _h: bool, _cl: bool) -> Vec<u8> { todo!() }
