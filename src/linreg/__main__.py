from linreg.cli import console

console()
