from emlops.cli import main

main()
