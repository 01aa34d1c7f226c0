struct Meter(u32);

impl Meter {
    #[rwt::timeout(mode = "exec")]
    fn read(&self) -> u32 {
        self.0
    }
}

fn main() {}
