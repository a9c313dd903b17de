import berth

berth.main()
