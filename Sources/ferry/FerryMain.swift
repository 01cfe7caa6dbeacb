import FerryCommands

// The executable is only this: every command lives in FerryCommands, so tests can call them.
@main extension Ferry {}
