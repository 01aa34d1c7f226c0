struct Cache(u32);

impl Cache {
    #[rwt::timeout(mode = "pool")]
    fn get(&self) -> u32 {
        self.0
    }
}

fn main() {}
