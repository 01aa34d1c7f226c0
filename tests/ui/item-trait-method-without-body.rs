trait T {
    #[rwt::timeout]
    fn f(&self) -> u8;
}

fn main() {}
