main()
{
    void *p;

    p = VirtualAlloc( (void *)0x01000000, 4*4096, MEM_RESERVE, PAGE_READWRITE );

    if ( VirtualFree( p, 0, MEM_RELEASE ) )
        printf(“Exito en la liberacion”);
    else
        printf(“Fallo en la liberacion”);
}
