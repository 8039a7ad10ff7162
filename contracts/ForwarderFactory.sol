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
///   skips that address and the rest of the batch goes on. The amounts moved are the token's own Transfer
///   logs (deposit address -> settlement address), which the watcher records as the sweep.
///
///   This factory is deployed at the same address on every EVM chain through the standard CREATE2
///   deployer (0x4e59b44847b379578588920ca78fbf26c0b4956c), with a zero salt. Compiled with no metadata
///   hash (contracts/build.sh), so the address depends on the code alone, not on comments or paths.
contract ForwarderFactory {
    /// @notice A sweep of `token` created the forwarders of `addresses` deposit addresses. The amounts are the
    /// token's own Transfer logs, from each deposit address to its settlement address.
    event Swept(address indexed token, uint256 addresses);
    /// @notice This address's forwarder could not run: the token refused the transfer (paused, blacklisted,
    /// not a token), or the salt was listed twice in one sweep. Its balance stays for a later sweep.
    event SweepFailed(address indexed token, address indexed depositAddress, bytes32 salt);

    error Reentered();

    /// @dev The token of the sweep in progress, read by each Forwarder's constructor; zero between sweeps.
    address private _sweeping;

    /// @notice The token being swept; the Forwarder's constructor asks its creator (this factory).
    function sweepingToken() external view returns (address) {
        return _sweeping;
    }

    /// @notice The deposit address of `salt`, as `sweep` creates it.
    function depositAddress(bytes32 salt) external view returns (address) {
        bytes memory initCode = _initCode(_settlement(salt));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(initCode))))));
    }

    /// @notice Moves the whole `token` balance of each salt's deposit address to its settlement address;
    /// returns how many forwarders ran. List only addresses that hold the token (stablepay_sweep checks the
    /// balances first): a forwarder for an empty address runs too, and moves nothing.
    function sweep(address token, bytes32[] calldata salts) external returns (uint256 swept) {
        if (_sweeping != address(0)) revert Reentered();
        _sweeping = token;
        for (uint256 i = 0; i < salts.length; i++) {
            bytes32 salt = salts[i];
            address settlement = _settlement(salt);
            if (settlement == address(0)) continue; // never issued: the tokens would be burned
            bytes memory initCode = _initCode(settlement);
            address created;
            assembly {
                created := create2(0, add(initCode, 32), mload(initCode), salt)
            }
            if (created == address(0)) {
                emit SweepFailed(
                    token,
                    address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(initCode)))))),
                    salt
                );
            } else {
                swept++;
            }
        }
        _sweeping = address(0);
        emit Swept(token, swept);
    }

    function _settlement(bytes32 salt) private pure returns (address) {
        return address(uint160(uint256(salt) >> 96));
    }

    function _initCode(address settlement) private pure returns (bytes memory) {
        return abi.encodePacked(type(Forwarder).creationCode, abi.encode(settlement));
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
        if (balance > 0) {
            // transfer(settlement, balance); a token that returns nothing (USDT) counts as success, as in
            // OpenZeppelin's SafeERC20.
            (ok, data) = token.call(abi.encodeWithSelector(0xa9059cbb, settlement, balance));
            require(ok && (data.length == 0 || abi.decode(data, (bool))), "transfer failed");
        }
        selfdestruct(payable(settlement));
    }
}
