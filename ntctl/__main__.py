from ntctl.main import main

main()
