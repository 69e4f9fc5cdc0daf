pub enum Sniff { Http, Legacy, NeedMore }
pub fn sniff(_b: &[u8]) -> Sniff { todo!() }
