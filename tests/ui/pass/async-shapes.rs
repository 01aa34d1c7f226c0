//! Async functions in every mode, as free functions and methods; a body that
//! holds a non-`Send` value across an `.await` (it runs on a current-thread
//! executor in the child) still gives the caller a `Send` future.

use std::rc::Rc;

#[rwt::timeout(secs = 1.0)]
async fn fork_mode(a: u32, text: &str) -> usize {
    let local = Rc::new(a);
    std::future::ready(()).await;
    *local as usize + text.len()
}

#[rwt::timeout(secs = 1.0, mode = "exec")]
async fn exec_mode(text: &str, (a, b): (u8, u8)) -> Result<usize, String> {
    let local = Rc::new(text.len());
    std::future::ready(()).await;
    Ok(*local + usize::from(a) + usize::from(b))
}

#[rwt::timeout(secs = 1.0, mode = "pool", ntries = 2)]
async fn pool_mode(items: Vec<String>) -> Vec<String> {
    items
}

struct Service {
    base: u32,
}

impl Service {
    #[rwt::timeout(secs = 1.0)]
    async fn method(&self, n: u32) -> u32 {
        self.base + n
    }

    #[rwt::timeout(secs = 1.0, mode = "pool")]
    async fn associated(n: u32) -> u32 {
        n
    }
}

fn is_send<T: Send>(_: &T) {}

async fn callers(service: &Service) -> Result<(), rwt::Error> {
    let _: usize = fork_mode(1, "x").await?;
    let _: Result<usize, String> = exec_mode("x", (1, 2)).await?;
    let _: Vec<String> = pool_mode(vec![]).await?;
    let _: u32 = service.method(1).await?;
    let _: u32 = Service::associated(1).await?;
    Ok(())
}

fn main() {
    is_send(&fork_mode(1, "x"));
    is_send(&exec_mode("x", (1, 2)));
    is_send(&pool_mode(vec![]));
    let service = Service { base: 1 };
    is_send(&service.method(2));
    is_send(&callers(&service));
}
