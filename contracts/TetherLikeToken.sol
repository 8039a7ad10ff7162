// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TetherLikeToken
/// @notice Dev/test only. This is OUR OWN contract, not Tether's. It reproduces the observable ABI and
///         event behaviour of Tether's USDT on Ethereum (TetherToken at
///         0xdAC17F958D2ee523a2206206994597C13D831ec7), written from that token's documented quirks,
///         not from its code, so a watcher and a wallet meet here what they meet there:
///
///         - `decimals()` returns a uint256, not a uint8 (the answer's 32-byte word is the same);
///         - `transfer`, `transferFrom` and `approve` return nothing (no bool): callers that insist on
///           a bool return fail, as they do with USDT;
///         - the constructor and `issue` credit the owner, and `redeem` debits the owner, with NO
///           Transfer log (only `Issue` / `Redeem`), so a payer is funded by a `transfer` from the owner;
///         - fees: with `setParams` on, fee = min(value * basisPointsRate / 10000, maximumFee); a
///           transfer then logs TWO Transfer events, the fee to the owner FIRST, then value - fee to the
///           recipient, who receives less than the call's value. As with USDT, `setParams` takes the
///           maximum fee in whole tokens (it stores maxFee * 10**decimals) and caps both arguments
///           (basisPoints < 20, maxFee < 50);
///         - `approve` of a non-zero value reverts while the current allowance is non-zero (set it to 0
///           first); an allowance of type(uint256).max is never decreased by `transferFrom`;
///         - `pause` / `unpause` stop and resume transfer and transferFrom (not approve); blacklisted
///           senders (`addBlackList`) cannot transfer, and `destroyBlackFunds` burns their balance,
///           again with no Transfer log;
///         - after `deprecate(upgraded)`, transfer / transferFrom / approve / balanceOf / allowance /
///           totalSupply are forwarded to the upgraded contract, so Transfer events come from ITS address.
///         Reverts carry no reason data (as with the old compiler USDT was built with), except that
///         Solidity 0.8's checked arithmetic reverts with a Panic where USDT hits an invalid opcode.
///         The ABI decoder of 0.8 rejects short call data, which USDT checks by hand.

/// @notice What a deprecated TetherLikeToken forwards to: the upgraded token's legacy entry points
///         (`msg.sender` there is the old token, so the original caller is passed along) and its views.
interface TetherLikeUpgrade {
    function transferByLegacy(address from, address to, uint256 value) external;
    function transferFromByLegacy(address sender, address from, address to, uint256 value) external;
    function approveByLegacy(address from, address spender, uint256 value) external;
    function balanceOf(address who) external view returns (uint256);
    function allowance(address holder, address spender) external view returns (uint256);
    function totalSupply() external view returns (uint256);
}

contract TetherLikeToken {
    uint256 public constant MAX_UINT = type(uint256).max;

    string public name;
    string public symbol;
    uint256 public decimals;
    uint256 public _totalSupply;
    address public owner;
    bool public paused;
    bool public deprecated;
    address public upgradedAddress;
    uint256 public basisPointsRate;
    uint256 public maximumFee;

    mapping(address => uint256) public balances;
    mapping(address => mapping(address => uint256)) public allowed;
    mapping(address => bool) public isBlackListed;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event Issue(uint256 amount);
    event Redeem(uint256 amount);
    event Deprecate(address newAddress);
    event Params(uint256 feeBasisPoints, uint256 maxFee);
    event Pause();
    event Unpause();
    event AddedBlackList(address user);
    event RemovedBlackList(address user);
    event DestroyedBlackFunds(address blackListedUser, uint256 balance);

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }

    modifier whenNotPaused() {
        require(!paused);
        _;
    }

    /// @notice The whole initial supply goes to the deployer (the owner), with no Transfer log.
    constructor(uint256 initialSupply, string memory name_, string memory symbol_, uint256 decimals_) {
        owner = msg.sender;
        _totalSupply = initialSupply;
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        balances[msg.sender] = initialSupply;
    }

    // ERC-20, the USDT way: no bool returns -------------------------------------------------------------
    function transfer(address to, uint256 value) external whenNotPaused {
        require(!isBlackListed[msg.sender]);
        if (deprecated) {
            TetherLikeUpgrade(upgradedAddress).transferByLegacy(msg.sender, to, value);
            return;
        }
        _move(msg.sender, to, value);
    }

    function transferFrom(address from, address to, uint256 value) external whenNotPaused {
        require(!isBlackListed[from]);
        if (deprecated) {
            TetherLikeUpgrade(upgradedAddress).transferFromByLegacy(msg.sender, from, to, value);
            return;
        }
        uint256 current = allowed[from][msg.sender];
        if (current < MAX_UINT) {
            allowed[from][msg.sender] = current - value; // reverts when the allowance is short
        }
        _move(from, to, value);
    }

    function approve(address spender, uint256 value) external {
        if (deprecated) {
            TetherLikeUpgrade(upgradedAddress).approveByLegacy(msg.sender, spender, value);
            return;
        }
        // From a non-zero allowance, only 0 may be approved (the approve/transferFrom race guard).
        require(value == 0 || allowed[msg.sender][spender] == 0);
        allowed[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
    }

    function balanceOf(address who) external view returns (uint256) {
        if (deprecated) return TetherLikeUpgrade(upgradedAddress).balanceOf(who);
        return balances[who];
    }

    function allowance(address holder, address spender) external view returns (uint256) {
        if (deprecated) return TetherLikeUpgrade(upgradedAddress).allowance(holder, spender);
        return allowed[holder][spender];
    }

    function totalSupply() external view returns (uint256) {
        if (deprecated) return TetherLikeUpgrade(upgradedAddress).totalSupply();
        return _totalSupply;
    }

    // issuance: the owner's balance moves with no Transfer log -----------------------------------------------
    /// @notice Credit `amount` new tokens to the owner. Logs `Issue` only; issuing 0 reverts.
    function issue(uint256 amount) external onlyOwner {
        require(amount > 0);
        _totalSupply += amount;
        balances[owner] += amount;
        emit Issue(amount);
    }

    /// @notice Debit `amount` tokens from the owner and the supply. Logs `Redeem` only.
    function redeem(uint256 amount) external onlyOwner {
        require(_totalSupply >= amount);
        require(balances[owner] >= amount);
        _totalSupply -= amount;
        balances[owner] -= amount;
        emit Redeem(amount);
    }

    // fees --------------------------------------------------------------------------------------------------
    /// @notice `basisPoints` in 1/10000 of the value (below 20); `maxFee` in WHOLE tokens (below 50).
    function setParams(uint256 basisPoints, uint256 maxFee) external onlyOwner {
        require(basisPoints < 20);
        require(maxFee < 50);
        basisPointsRate = basisPoints;
        maximumFee = maxFee * 10 ** decimals;
        emit Params(basisPointsRate, maximumFee);
    }

    // administration -------------------------------------------------------------------------------------------
    function pause() external onlyOwner whenNotPaused {
        paused = true;
        emit Pause();
    }

    function unpause() external onlyOwner {
        require(paused);
        paused = false;
        emit Unpause();
    }

    function getOwner() external view returns (address) {
        return owner;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner != address(0)) owner = newOwner;
    }

    function getBlackListStatus(address maker) external view returns (bool) {
        return isBlackListed[maker];
    }

    function addBlackList(address user) external onlyOwner {
        isBlackListed[user] = true;
        emit AddedBlackList(user);
    }

    function removeBlackList(address user) external onlyOwner {
        isBlackListed[user] = false;
        emit RemovedBlackList(user);
    }

    /// @notice Burn a blacklisted holder's balance (no Transfer log).
    function destroyBlackFunds(address user) external onlyOwner {
        require(isBlackListed[user]);
        uint256 dirty = balances[user];
        balances[user] = 0;
        _totalSupply -= dirty;
        emit DestroyedBlackFunds(user, dirty);
    }

    /// @notice From now on the token's calls are forwarded to `upgraded` (see TetherLikeUpgrade).
    function deprecate(address upgraded) external onlyOwner {
        deprecated = true;
        upgradedAddress = upgraded;
        emit Deprecate(upgraded);
    }

    // internals ------------------------------------------------------------------------------------------------
    /// @dev Moves `value` from `from`: the fee (if any) to the owner, logged first, then the rest to `to`.
    function _move(address from, address to, uint256 value) internal {
        uint256 fee = (value * basisPointsRate) / 10000;
        if (fee > maximumFee) fee = maximumFee;
        uint256 sendAmount = value - fee;
        balances[from] -= value; // reverts when the balance is short
        balances[to] += sendAmount;
        if (fee > 0) {
            balances[owner] += fee;
            emit Transfer(from, owner, fee);
        }
        emit Transfer(from, to, sendAmount);
    }
}
