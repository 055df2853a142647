// SPDX-License-Identifier: GPL-2.0

//! Sample module: calls `rvio_test_provider.ko` through its C-ABI and refuses
//! to load unless every call returns what the API promises.

use kernel::prelude::*;

#[path = "bindings_generated.rs"]
mod bindings;
#[path = "test_provider.rs"]
mod test_provider;

module! {
    type: TestConsumer,
    name: "rvio_test_consumer",
    author: "rvio developers",
    description: "rvio selftest: calls another module's C-ABI from Rust",
    license: "GPL",
}

struct TestConsumer;

impl kernel::Module for TestConsumer {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let version = test_provider::abi_version();
        if version != bindings::RVIO_TEST_PROVIDER_ABI_VERSION {
            pr_err!(
                "provider ABI version {} != {}\n",
                version,
                bindings::RVIO_TEST_PROVIDER_ABI_VERSION
            );
            return Err(EINVAL);
        }

        let mut vals = [0u32; 100];
        for (v, i) in vals.iter_mut().zip(1u32..) {
            *v = i;
        }
        let sum = test_provider::sum(&vals)?;
        if sum != 5050 {
            pr_err!("sum of 1..=100 is {}, want 5050\n", sum);
            return Err(EIO);
        }
        match test_provider::sum(&[]) {
            Err(e) if e == EINVAL => {}
            other => {
                pr_err!("sum of nothing gave {:?}, want EINVAL\n", other);
                return Err(EIO);
            }
        }

        pr_info!("cross-module calls ok (ABI {}, sum {})\n", version, sum);
        Ok(TestConsumer)
    }
}
