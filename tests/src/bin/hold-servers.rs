//! Starts an influxd and an SMTP server as a test would, prints their process ids
//! and waits to be killed: `servers_die_with_a_killed_test` SIGKILLs it and checks
//! that the servers go too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::Write as _;

use hostscope_tests::influxd::TestInflux;
use hostscope_tests::smtp::TestSmtp;

fn main() {
    let influx = TestInflux::start();
    let smtp = TestSmtp::start();
    println!("{} {}", influx.pid().unwrap(), smtp.pid().unwrap());
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
