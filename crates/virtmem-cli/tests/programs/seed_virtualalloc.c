main()
{

void *p;

p = VirtualAlloc( (void *)0x40000000,

8*4096,

MEM_RESERVE,

PAGE_READWRITE );

if (p == NULL)

printf(“Fallo en la RESERVA”);

else

printf(“Dir. de RESERVA = %p”, p);

}
