// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Keyless deposit addresses for stablepay, swept to a fixed settlement address (issue 18).
///
/// @notice Each payment request pays to an address computed off-line, with no key behind it:
///
///     salt         = settlement address (high 20 bytes) ++ a request number (low 12 bytes)
///     init code    = Forwarder's creation code ++ abi.encode(settlement address)
///     deposit      = CREATE2(this factory, salt, keccak256(init code))
///
///   Nothing is deployed when the request is made. `sweep(token, salts)` creates, for each salt, the
///   Forwarder at that address for the length of one transaction: its constructor sends the address's
///   whole balance of `token` (and any ETH) to the settlement address, then self-destructs. A contract
///   destroyed in the transaction that created it leaves no code behind (EIP-6780), so a payment that
///   arrives later at the same address is swept the same way.
///
///   Anyone may call `sweep`: the settlement address is read from the salt and is part of the init code,
///   so the deposit address itself fixes where its money can go. A salt naming another settlement address
///   is another deposit address (one nobody was asked to pay). Works with any ERC-20, registered or not:
///   tokens that return no bool (USDT), tokens that take a fee on transfer (the settlement address gets
///   what the token delivers); a token that refuses the transfer (a paused or blacklisting stablecoin)
///   skips that address and the rest of the batch goes on.
///
///   This factory is deployed at the same address on every EVM chain through the standard CREATE2
///   deployer (0x4e59b44847b379578588920ca78fbf26c0b4956c), with a zero salt. Compiled with no metadata
///   hash (contracts/build.sh), so the address depends on the code alone, not on comments or paths.
contract ForwarderFactory {
    /// @notice `amount` of `token` left `depositAddress` for `settlement` (what the token delivers may be less).
    event Swept(
        address indexed token, address indexed depositAddress, address indexed settlement, bytes32 salt, uint256 amount
    );
    /// @notice The token refused to move this address's balance (paused, blacklisted, or not a token).
    event SweepFailed(address indexed token, address indexed depositAddress, bytes32 salt);

    error Reentered();

    /// @dev The token of the sweep in progress, read by each Forwarder's constructor; zero between sweeps.
    address private _sweeping;

    /// @notice The token being swept; the Forwarder's constructor asks its creator (this factory).
    function sweepingToken() external view returns (address) {
        return _sweeping;
    }

    /// @notice The deposit address of `salt`, as `sweep` creates it.
    function depositAddress(bytes32 salt) public view returns (address) {
        return _depositAddress(salt, keccak256(_initCode(_settlement(salt))));
    }

    /// @notice Moves the whole `token` balance of each salt's deposit address to its settlement address.
    /// Addresses holding none of it are skipped; returns how many were swept.
    function sweep(address token, bytes32[] calldata salts) external returns (uint256 swept) {
        if (_sweeping != address(0)) revert Reentered();
        _sweeping = token;
        for (uint256 i = 0; i < salts.length; i++) {
            bytes32 salt = salts[i];
            address settlement = _settlement(salt);
            if (settlement == address(0)) continue; // never issued: tokens would be burned
            bytes memory initCode = _initCode(settlement);
            address deposit = _depositAddress(salt, keccak256(initCode));
            uint256 amount = _balanceOf(token, deposit);
            if (amount == 0) continue; // nothing to move (a wrong salt, or already swept)
            address created;
            assembly {
                created := create2(0, add(initCode, 32), mload(initCode), salt)
            }
            if (created == address(0)) {
                emit SweepFailed(token, deposit, salt);
            } else {
                emit Swept(token, deposit, settlement, salt, amount);
                swept++;
            }
        }
        _sweeping = address(0);
    }

    function _settlement(bytes32 salt) private pure returns (address) {
        return address(uint160(uint256(salt) >> 96));
    }

    function _initCode(address settlement) private pure returns (bytes memory) {
        return abi.encodePacked(type(Forwarder).creationCode, abi.encode(settlement));
    }

    function _depositAddress(bytes32 salt, bytes32 initCodeHash) private view returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initCodeHash)))));
    }

    function _balanceOf(address token, address account) private view returns (uint256) {
        (bool ok, bytes memory data) = token.staticcall(abi.encodeWithSelector(0x70a08231, account));
        return ok && data.length >= 32 ? abi.decode(data, (uint256)) : 0;
    }
}

/// @notice Lives for one transaction at a deposit address: sends the address's whole balance of the token
/// being swept (and any ETH) to `settlement`, then self-destructs. Reverting makes the factory skip it.
contract Forwarder {
    constructor(address settlement) payable {
        address token = ForwarderFactory(msg.sender).sweepingToken();
        (bool ok, bytes memory data) = token.staticcall(abi.encodeWithSelector(0x70a08231, address(this)));
        require(ok && data.length >= 32, "balanceOf failed");
        uint256 balance = abi.decode(data, (uint256));
        // transfer(settlement, balance); a token that returns nothing (USDT) counts as success, as in OpenZeppelin's SafeERC20.
        (ok, data) = token.call(abi.encodeWithSelector(0xa9059cbb, settlement, balance));
        require(ok && (data.length == 0 || abi.decode(data, (bool))), "transfer failed");
        selfdestruct(payable(settlement));
    }
}
