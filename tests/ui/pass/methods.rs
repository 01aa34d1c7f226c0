struct Meter {
    scale: u32,
}

impl Meter {
    const SECS: f64 = 1.5;

    #[rwt::timeout(secs = Self::SECS)]
    fn read(&self, raw: u32) -> u32 {
        raw * self.scale
    }

    #[rwt::timeout]
    fn into_scale(self) -> u32 {
        self.scale
    }

    #[rwt::timeout]
    fn new_scale() -> u32 {
        10
    }
}

trait Probe {
    fn probe(&self) -> Result<String, rwt::Error>;

    #[rwt::timeout]
    fn default_probe(&self) -> u8 {
        0
    }
}

impl Probe for Meter {
    #[rwt::timeout(secs = 2.0)]
    fn probe(&self) -> String {
        format!("scale {}", self.scale)
    }
}

fn main() {
    let m = Meter { scale: 2 };
    let _: Result<u32, rwt::Error> = m.read(1);
    let _: Result<String, rwt::Error> = m.probe();
    let _: Result<u8, rwt::Error> = m.default_probe();
    let _: Result<u32, rwt::Error> = Meter::new_scale();
    let _: Result<u32, rwt::Error> = m.into_scale();
}
