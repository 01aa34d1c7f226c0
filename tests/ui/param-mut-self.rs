struct Counter(u32);

impl Counter {
    #[rwt::timeout]
    fn bump(&mut self) {
        self.0 += 1;
    }
}

fn main() {}
