// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TestProxy
/// @notice Dev/test-only ERC-1967 upgradeable proxy (self-contained, no imports). The implementation
///         address lives in the standard ERC-1967 slot; `upgradeTo` by the admin swaps it and emits
///         `Upgraded(address)` exactly as OpenZeppelin's proxies do, which is what stablepay's
///         contract checks watch for. Every other call is delegated to the implementation.
contract TestProxy {
    // bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1)
    bytes32 private constant IMPLEMENTATION_SLOT = 0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc;
    // bytes32(uint256(keccak256("eip1967.proxy.admin")) - 1)
    bytes32 private constant ADMIN_SLOT = 0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103;

    event Upgraded(address indexed implementation);

    error NotAdmin();
    error InitFailed();

    constructor(address implementation, bytes memory init) {
        address admin = msg.sender;
        assembly {
            sstore(ADMIN_SLOT, admin)
        }
        _setImplementation(implementation);
        if (init.length > 0) {
            (bool ok, ) = implementation.delegatecall(init);
            if (!ok) revert InitFailed();
        }
    }

    function upgradeTo(address implementation) external {
        address admin;
        assembly {
            admin := sload(ADMIN_SLOT)
        }
        if (msg.sender != admin) revert NotAdmin();
        _setImplementation(implementation);
    }

    function _setImplementation(address implementation) private {
        assembly {
            sstore(IMPLEMENTATION_SLOT, implementation)
        }
        emit Upgraded(implementation);
    }

    fallback() external {
        assembly {
            let implementation := sload(IMPLEMENTATION_SLOT)
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), implementation, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 {
                revert(0, returndatasize())
            }
            default {
                return(0, returndatasize())
            }
        }
    }
}
